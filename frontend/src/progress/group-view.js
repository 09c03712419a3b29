// Group mode: the header, one overall bar and one row per task of the group.

import { el, makeBar, makeMarker, renderHead, setAttr, setRowState, setText, setWidth, STEP_MARKERS } from './dom.js';
import {
  groupFinalAnnouncement, isFinalState, memberEnded, membersEnded, stateLabel, summarizeGroup, summarizeMember, text,
} from './snapshot.js';

const MAX_NAMED_ANNOUNCEMENTS = 3; // more members ending in one frame are counted, not named
const TASK_MARKERS = {
  SUCCESS: STEP_MARKERS.done, FAILURE: STEP_MARKERS.failed, REVOKED: STEP_MARKERS.failed, LOST: STEP_MARKERS.failed,
  EXPIRED: STEP_MARKERS.skipped,
  STARTED: STEP_MARKERS.running, PROGRESS: STEP_MARKERS.running, RETRY: STEP_MARKERS.running, PENDING: STEP_MARKERS.pending,
};

/** A group row's key: its task_id, else (or if that repeats) its position. `taken` holds keys used so far. */
function rowKey(member, index, taken) {
  const key = member.task_id != null ? `id:${member.task_id}` : '';
  return key && !taken.has(key) ? key : `#${index}`;
}

function makeTaskItem() {
  const li = el('li', 'djenga-task');
  li.append(makeMarker('djenga-task-marker', 'task-marker'), el('span', 'djenga-task-name', 'task-name'),
    makeBar('djenga-task-bar', 'task-bar'), el('span', 'djenga-task-step', 'task-step'));
  return li;
}

/** Bring one group row up to date with `summarizeMember`'s result. */
function updateTaskItem(li, { name, state, percent, step, label }, t) {
  const [, nameEl, bar, stepEl] = li.children;
  setRowState(li, state, `task task-${state.toLowerCase()}`, TASK_MARKERS[state], `${stateLabel(state, t)}: `);
  setText(nameEl, name);
  setText(stepEl, step);
  setWidth(bar.firstChild, percent);
  setAttr(li, 'aria-label', label);
}

export class GroupView {
  constructor(host, els) {
    this.host = host;
    this.els = els;
    this.reset();
  }

  reset() {
    this.rows = new Map(); // row key -> <li>, so rows are reused across frames
    this.memberStates = new Map(); // row key -> last member state, for announcements
    this.els.tasks.replaceChildren();
  }

  /** Render `snap`; `ctx` is {t, label, fatal}. Groups show no clocks, so this returns false. */
  render(snap, { t, label, fatal }) {
    const { members, state, percent, countText, valuetext } = summarizeGroup(snap, t);
    renderHead(this.host, this.els, {
      state, percent, valuetext, count: countText, stateText: stateLabel(state, t),
      label: label || t.gettext('Tasks'),
      error: fatal || text(snap?.error?.message), // members' errors are in their rows
    }, t);
    // Rows are keyed by task_id and only moved when the order changes, so a frame of a
    // 200-task group costs a few text updates, not a rebuilt list.
    const list = this.els.tasks;
    const rows = new Map();
    members.forEach((member, i) => {
      const key = rowKey(member, i, rows);
      const li = this.rows.get(key) || makeTaskItem();
      rows.set(key, li);
      updateTaskItem(li, summarizeMember(member, i, t), t);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    for (const [key, li] of this.rows) if (!rows.has(key)) li.remove();
    this.rows = rows;
    return false;
  }

  /**
   * What the live region should say about a new group snapshot, or '': the members that have
   * just ended ("import_file done"), then how far the group is, or how it ended.
   */
  news(prev, snap, t) {
    const before = this.memberStates;
    const now = new Map();
    const ended = [];
    const group = summarizeGroup(snap, t);
    group.members.forEach((member, i) => {
      const key = rowKey(member, i, now);
      const { name, state } = summarizeMember(member, i, t);
      now.set(key, state);
      // The first snapshot is already on screen: only later changes are news.
      if (prev && isFinalState(state) && !isFinalState(before.get(key))) ended.push([name, state]);
    });
    this.memberStates = now;
    let news = ended.map(([name, state]) => memberEnded(name, state, t));
    if (ended.length > MAX_NAMED_ANNOUNCEMENTS) {
      const tally = new Map();
      for (const [, state] of ended) {
        const kind = state === 'LOST' ? 'FAILURE' : state;
        tally.set(kind, (tally.get(kind) || 0) + 1);
      }
      news = [t.list([...tally].map(([state, n]) => membersEnded(n, state, t)))];
    }
    if (isFinalState(snap.state) && !isFinalState(prev?.state)) news.push(groupFinalAnnouncement(snap.state, t));
    // Names repeat in a group (ten "import_file"s): the running count keeps each message distinct.
    else if (news.length) news.push(group.countText);
    return news.join('. ');
  }
}
