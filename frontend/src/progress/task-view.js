// Single-task mode: the header, the overall bar and one row per step, ticking clocks between frames.

import { attemptText, retryAnnouncement, retryNow, retryText } from './countdown.js';
import { el, makeBar, makeMarker, renderHead, setRowState, setText, setWidth, STEP_MARKERS } from './dom.js';
import {
  etaSeconds, formatElapsed, formatEta, isFinalState, num, STEP_LABELS, stateLabel, stepElapsedMs,
  stepProgress, stepsOf, summarize, taskElapsedMs, text,
} from './snapshot.js';
import { renderStepTree, tickStepTree } from './step-tree.js';

function makeStepItem() {
  const li = el('li', 'djenga-step');
  const bar = makeBar('djenga-step-bar', 'step-bar');
  bar.setAttribute('aria-hidden', 'true'); // only the overall bar is a progressbar; step-count says it in words
  bar.hidden = true;
  li.append(makeMarker('djenga-step-marker', 'step-marker'), el('span', 'djenga-step-description', 'step-description'),
    el('span', 'djenga-step-elapsed', 'step-elapsed'), bar, el('span', 'djenga-step-count', 'step-count'),
    el('span', 'djenga-step-message', 'step-message'));
  return li;
}

/** Bring one step row up to date with step `step` at position `index` (0-based). */
function updateStepItem(li, step, index, t) {
  // Unknown states are shown as pending so part names and styling stay predictable.
  const state = Object.hasOwn(STEP_MARKERS, step.state) ? step.state : 'pending';
  setRowState(li, state, `step step-${state}`, STEP_MARKERS[state], `${t.gettext(STEP_LABELS[state])}: `);
  const [, description, , bar, count, message] = li.children;
  const progress = stepProgress(step, t);
  setText(description, text(step.description) || t.gettext('Step %(index)s', { index: t.number(index + 1) }));
  bar.hidden = !progress;
  setWidth(bar.firstChild, progress?.percent);
  setText(count, progress?.text ?? '');
  setText(message, text(step.message));
}

export class TaskView {
  constructor(host, els) {
    this.host = host;
    this.els = els;
    this.reset();
  }

  reset() {
    this.announced = null; // null = nothing rendered yet
    this.els.steps.replaceChildren();
  }

  /** Render `snap`; `ctx` is {t, label, fatal, final, live, offset}. Returns whether clocks should tick. */
  render(snap, ctx) {
    const { t } = ctx;
    const { steps, state, percent, valuetext } = summarize(snap, t);
    renderHead(this.host, this.els, {
      state, percent, valuetext, count: attemptText(snap, t), stateText: stateLabel(state, t),
      label: ctx.label || text(snap?.name) || t.gettext('Task progress'),
      // Only error.message is ever shown: tracebacks stay server-side even if a field carries one.
      error: ctx.fatal || (state === 'FAILURE' ? text(snap?.error?.message) || t.gettext('The task failed.') : ''),
    }, t);
    renderStepTree(this.els.steps, steps, t, makeStepItem, updateStepItem); // nested steps: step-tree.js
    this.renderClock(snap, ctx);
    // The clocks (task elapsed, eta, running steps) tick on server time between frames.
    return ctx.live && !ctx.final && !ctx.fatal && (num(snap?.started_at) !== null || num(snap?.eta) !== null
      || steps.some((s) => s.state === 'running' && num(s.started_at) !== null && num(s.ended_at) === null));
  }

  /** The time texts: the task's elapsed and eta in the header, each step's elapsed. */
  renderClock(snap, { t, final, offset }) {
    const now = Date.now() + (offset ?? 0);
    // Once the task is final, nothing counts past its last update.
    const cap = final && num(snap?.updated_at) !== null ? snap.updated_at * 1000 : null;
    // While a retry waits, the eta slot counts down to the next attempt (countdown.js).
    const eta = retryText(snap, retryNow(offset), t) || formatEta(etaSeconds(snap, now), t);
    setClockText(this.els, formatElapsed(taskElapsedMs(snap, now, cap), t), eta);
    tickStepTree(this.els.steps, stepsOf(snap), (step) => formatElapsed(stepElapsedMs(step, now, cap), t));
  }

  /** What the live region should say about a new snapshot, or ''. */
  news(prev, snap, t) {
    const before = this.announced;
    if (snap.state === 'RETRY' && prev?.state !== 'RETRY' && prev) return retryAnnouncement(snap, t);
    const { announcement } = summarize(snap, t);
    if (announcement || before === null) this.announced = announcement;
    // Only announce changes; the first snapshot is already on screen, unless it is the outcome.
    if (!announcement) return '';
    return (before === null ? isFinalState(snap.state) : announcement !== before) ? announcement : '';
  }
}

/** Show (or hide, when empty) the header's elapsed and eta texts. */
export function setClockText(els, elapsed, eta) {
  els.elapsed.hidden = !elapsed;
  setText(els.elapsed.lastChild, elapsed);
  setText(els.eta, eta);
}
