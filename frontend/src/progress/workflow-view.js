// Workflow mode (a chain or a chord, `workflow-token`): the header, one overall bar, then one
// row per stage in order, each with its tasks and their steps (sub-steps nested, as in the task
// view). Python computes the stages' states and the overall percent
// (djenga.wire.workflow_snapshot); this only displays them.

import { retryNow, retryText } from './countdown.js';
import {
  el, makeBar, makeMarker, renderHead, setAttr, setRowState, setText, setWidth, sized, STEP_MARKERS,
} from './dom.js';
import { ENGLISH } from './i18n.js';
import { renderStepTree } from './step-tree.js';
import {
  groupFinalAnnouncement, isFinalState, isObject, memberEnded, num, shownPercent, STATE_LABELS, STEP_LABELS,
  stateLabel, stepsOf, text,
} from './snapshot.js';

const STATE_MARKERS = {
  SUCCESS: STEP_MARKERS.done, FAILURE: STEP_MARKERS.failed, REVOKED: STEP_MARKERS.failed, LOST: STEP_MARKERS.failed,
  EXPIRED: STEP_MARKERS.skipped,
  STARTED: STEP_MARKERS.running, PROGRESS: STEP_MARKERS.running, RETRY: STEP_MARKERS.running, PENDING: STEP_MARKERS.pending,
};

// Its own styles, added to the shadow root next to the shared ones (dom.js), in the same
// custom properties: --djenga-accent, --djenga-done, --djenga-failed, --djenga-muted …
const STYLE = `
  .djenga-stages { list-style: none; margin: 10px 0 0; padding: 0; }
  .djenga-stages:empty { display: none; }
  .djenga-stage { --_tone: var(--_muted); padding: 4px 0; border-top: 1px solid color-mix(in srgb, var(--_border) 50%, transparent); }
  .djenga-stage:first-child { border-top: 0; }
  .djenga-stage:is([data-state="STARTED"], [data-state="PROGRESS"], [data-state="RETRY"]) { --_tone: var(--_accent); }
  .djenga-stage[data-state="SUCCESS"] { --_tone: var(--_done); }
  .djenga-stage:is([data-state="FAILURE"], [data-state="LOST"]) { --_tone: var(--_failed); }
  :is(.djenga-stage-head, .djenga-stage-task-head) {
    display: grid; grid-template-columns: 1.25em minmax(0, 1fr) minmax(3em, 25%); column-gap: 0.5em; align-items: center;
  }
  .djenga-stage-name { font-weight: 600; overflow-wrap: anywhere; }
  :is(.djenga-stage-bar, .djenga-stage-task-bar) {
    overflow: hidden; border-radius: 999px; height: var(--djenga-task-bar-height, 4px);
    background: color-mix(in srgb, var(--_border) 60%, transparent);
  }
  :is(.djenga-stage-bar-fill, .djenga-stage-task-bar-fill) { width: 0; height: 100%; background: var(--_tone); transition: width 0.3s ease-out; }
  @media (prefers-reduced-motion: reduce) { :is(.djenga-stage-bar-fill, .djenga-stage-task-bar-fill) { transition: none; } }
  :is(.djenga-stage-marker, .djenga-stage-task-marker, .djenga-stage-step-marker) { text-align: center; color: var(--_tone); }
  .djenga-stage-tasks, .djenga-stage-steps { list-style: none; margin: 0; padding: 0 0 0 1.75em; }
  .djenga-stage-task { --_tone: var(--_muted); }
  .djenga-stage-task:is([data-state="STARTED"], [data-state="PROGRESS"], [data-state="RETRY"]) { --_tone: var(--_accent); }
  .djenga-stage-task[data-state="SUCCESS"] { --_tone: var(--_done); }
  .djenga-stage-task:is([data-state="FAILURE"], [data-state="LOST"]) { --_tone: var(--_failed); }
  .djenga-stage-task-name { overflow-wrap: anywhere; }
  .djenga-stage-task-status { display: block; font-size: 0.85em; color: var(--_muted); padding-left: 1.75em; }
  .djenga-stage-task-status:empty { display: none; }
  .djenga-stage-task[data-single] > .djenga-stage-task-head { display: none; }
  .djenga-stage-task[data-single] > .djenga-stage-task-status { padding-left: 0; }
  .djenga-stage-step {
    --_tone: var(--_muted); display: grid; grid-template-columns: 1.25em 1fr; column-gap: 0.5em; font-size: 0.9em;
  }
  .djenga-stage-step[data-state="done"] { --_tone: var(--_done); }
  .djenga-stage-step[data-state="failed"] { --_tone: var(--_failed); }
  .djenga-stage-step[data-state="running"] { --_tone: var(--_accent); }
  .djenga-stage-step[data-state="running"] .djenga-stage-step-description { font-weight: 600; }
  .djenga-stage-step:is([data-state="pending"], [data-state="skipped"]) .djenga-stage-step-description { color: var(--_muted); }
  .djenga-stage-step-message { grid-column: 2; font-size: 0.9em; color: var(--_muted); overflow-wrap: anywhere; }
  .djenga-stage-step-message:empty { display: none; }
`;

const stagesOf = (snap) => (Array.isArray(snap?.stages) ? snap.stages.filter(isObject) : []);
const tasksOf = (stage) => (Array.isArray(stage?.tasks) ? stage.tasks.filter(isObject) : []);
const known = (state) => (Object.hasOwn(STATE_LABELS, state) ? state : 'PENDING');

/** What one stage is called: "Stage 1: gru.export" (one task) or "Stage 2: 4 tasks". */
export function stageName(stage, index, t = ENGLISH) {
  const tasks = tasksOf(stage);
  const values = { index: t.number(index + 1) };
  if (tasks.length === 1) {
    const name = text(tasks[0].name) || t.gettext('Task %(index)s', { index: t.number(1) });
    return t.gettext('Stage %(index)s: %(name)s', { ...values, name });
  }
  return t.ngettext('Stage %(index)s: %(n)s task', 'Stage %(index)s: %(n)s tasks', tasks.length, values);
}

/** Derive what the header shows from a workflow snapshot: state, percent, "Stage 2 of 3", its stages. */
export function summarizeWorkflow(snap, t = ENGLISH) {
  const stages = stagesOf(snap);
  const state = typeof snap?.state === 'string' ? snap.state : '';
  const count = stages.length;
  const current = num(snap?.current);
  let countText = '';
  if (snap && current !== null && current < count) {
    countText = t.gettext('Stage %(index)s of %(count)s', { index: t.number(current + 1), count: t.number(count) });
  } else if (snap && count) countText = t.ngettext('%(n)s stage done', '%(n)s stages done', count);
  const currentName = current !== null && stages[current] ? stageName(stages[current], current, t) : '';
  const failed = state === 'FAILURE' || state === 'LOST' || state === 'REVOKED';
  return {
    stages, state, percent: shownPercent(snap), countText,
    valuetext: (isFinalState(state) ? stateLabel(state, t) : [countText, currentName].filter(Boolean).join(': '))
      || stateLabel(state, t),
    error: failed && current !== null ? t.gettext('Stage %(index)s failed.', { index: t.number(current + 1) }) : '',
  };
}

/** A stage's or a task's row changes state: data-state, part names and its head's marker. */
function makeStage() {
  const li = el('li', 'djenga-stage');
  const head = el('div', 'djenga-stage-head', 'stage-head');
  head.append(makeMarker('djenga-stage-marker', 'stage-marker'), el('span', 'djenga-stage-name', 'stage-name'),
    makeBar('djenga-stage-bar', 'stage-bar'));
  li.append(head, el('ol', 'djenga-stage-tasks', 'stage-tasks'));
  return li;
}

function makeTask() {
  const li = el('li', 'djenga-stage-task');
  const head = el('div', 'djenga-stage-task-head', 'stage-task-head');
  head.append(makeMarker('djenga-stage-task-marker', 'stage-task-marker'), el('span', 'djenga-stage-task-name', 'stage-task-name'),
    makeBar('djenga-stage-task-bar', 'stage-task-bar'));
  li.append(head, el('span', 'djenga-stage-task-status', 'stage-task-status'), el('ol', 'djenga-stage-steps', 'stage-steps'));
  return li;
}

function makeStep() {
  const li = el('li', 'djenga-stage-step');
  li.append(makeMarker('djenga-stage-step-marker', 'stage-step-marker'),
    el('span', 'djenga-stage-step-description', 'stage-step-description'), el('span', 'djenga-stage-step-message', 'stage-step-message'));
  return li;
}

function updateStep(li, step, i, t) {
  const state = Object.hasOwn(STEP_MARKERS, step.state) ? step.state : 'pending';
  setRowState(li, state, `stage-step stage-step-${state}`, STEP_MARKERS[state], `${t.gettext(STEP_LABELS[state])}: `);
  setText(li.children[1], text(step.description) || t.gettext('Step %(index)s', { index: t.number(i + 1) }));
  setText(li.children[2], text(step.message));
}

/** A task's steps, sub-steps indented under their parent and collapsible (step-tree.js). */
function updateSteps(list, task, t) {
  renderStepTree(list, stepsOf(task), t, makeStep, updateStep);
}

/** A task's status line: its retry countdown, its error (if shown), or its state's name. */
function taskStatus(task, nowMs, t) {
  const state = known(task.state);
  return retryText(task, nowMs, t) || (state === 'FAILURE' && text(task?.error?.message)) || stateLabel(state, t);
}

export class WorkflowView {
  constructor(host, els) {
    this.host = host;
    this.els = els;
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.list = el('ol', 'djenga-stages', 'stages');
    this.list.hidden = true;
    els.root.insertBefore(this.list, els.error);
    els.root.getRootNode().append(style);
    this.reset();
  }

  reset() {
    this.stageStates = null; // stage index -> last state, for announcements
    this.list.replaceChildren();
  }

  /** Show or hide the stage list (only workflow mode shows it). */
  set active(on) { this.list.hidden = !on; }

  /** Render `snap`; `ctx` is {t, label, fatal, offset}. Ticks (returns true) while a task counts down to a retry. */
  render(snap, ctx) {
    const { t } = ctx;
    const view = summarizeWorkflow(snap, t);
    renderHead(this.host, this.els, {
      state: view.state, percent: view.percent, valuetext: view.valuetext, count: view.countText,
      stateText: stateLabel(view.state, t), label: ctx.label || t.gettext('Workflow'),
      error: ctx.fatal || view.error,
    }, t);
    const count = view.stages.length;
    sized(this.list, count, makeStage).forEach((li, index) => {
      const stage = view.stages[index];
      const state = known(stage.state);
      const name = stageName(stage, index, t);
      setRowState(li, state, `stage stage-${state.toLowerCase()}`, STATE_MARKERS[state], `${stateLabel(state, t)}: `,
        li.firstChild.firstChild);
      setText(li.querySelector('.djenga-stage-name'), name);
      setWidth(li.querySelector('.djenga-stage-bar-fill'), shownPercent(stage));
      setAttr(li, 'aria-label', t.gettext('%(name)s: %(step)s', { name, step: stateLabel(state, t) }));
      const tasks = tasksOf(stage);
      const single = tasks.length === 1;
      sized(li.lastElementChild, tasks.length, makeTask).forEach((row, i) => {
        const task = tasks[i];
        const taskState = known(task.state);
        row.toggleAttribute('data-single', single);
        const taskName = text(task.name) || t.gettext('Task %(index)s', { index: t.number(i + 1) });
        setRowState(row, taskState, `stage-task stage-task-${taskState.toLowerCase()}`, STATE_MARKERS[taskState],
          `${stateLabel(taskState, t)}: `, row.firstChild.firstChild);
        setText(row.querySelector('.djenga-stage-task-name'), taskName);
        setWidth(row.querySelector('.djenga-stage-task-bar-fill'), shownPercent(task));
        if (!single) setAttr(row, 'aria-label', t.gettext('%(name)s: %(step)s', { name: taskName, step: stateLabel(taskState, t) }));
        updateSteps(row.lastElementChild, task, t);
      });
    });
    this.renderClock(snap, ctx);
    return !ctx.final && !ctx.fatal && ctx.live !== false
      && view.stages.some((stage) => tasksOf(stage).some((task) => task.state === 'RETRY'));
  }

  /** The tasks' status lines, with their retry countdowns on server time. */
  renderClock(snap, { t, offset }) {
    const now = retryNow(offset);
    stagesOf(snap).forEach((stage, index) => {
      const li = this.list.children[index];
      if (!li) return;
      const rows = li.lastElementChild.children;
      tasksOf(stage).forEach((task, i) => {
        if (rows[i]) setText(rows[i].querySelector('.djenga-stage-task-status'), taskStatus(task, now, t));
      });
    });
  }

  /** What the live region says: the stages that just ended ("Stage 1: gru.stage done"), then how it ended. */
  news(prev, snap, t) {
    const stages = stagesOf(snap);
    const before = this.stageStates;
    this.stageStates = stages.map((stage) => known(stage.state));
    const news = [];
    if (prev && before) {
      stages.forEach((stage, index) => {
        const state = known(stage.state);
        if (isFinalState(state) && !isFinalState(before[index])) news.push(memberEnded(stageName(stage, index, t), state, t));
      });
    }
    if (isFinalState(snap.state) && !isFinalState(prev?.state)) news.push(groupFinalAnnouncement(snap.state, t));
    return news.join('. ');
  }
}
