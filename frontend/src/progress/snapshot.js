// Pure helpers: what a wire-format snapshot (v1 or v2) shows, as data and text in one language.
// No DOM and no connection here; every function takes a Translator (default English).

import { isFinalState } from './constants.js';
import { ENGLISH } from './i18n.js';

export { isFinalState };

/** Marks a string for translation where it is defined; `t.gettext` translates it where it is used. */
const gettext_noop = (msgid) => msgid;

/** What each task state is called (the state badge, a finished bar's valuetext). */
export const STATE_LABELS = Object.freeze({
  PENDING: gettext_noop('Waiting'), STARTED: gettext_noop('Started'), PROGRESS: gettext_noop('In progress'),
  RETRY: gettext_noop('Retrying'), SUCCESS: gettext_noop('Done'), FAILURE: gettext_noop('Failed'),
  REVOKED: gettext_noop('Cancelled'), LOST: gettext_noop('Lost contact with the worker'),
  EXPIRED: gettext_noop('No longer available'),
});
// What the live region says when the task ends.
const FINAL_ANNOUNCE = {
  SUCCESS: gettext_noop('Task done'), FAILURE: gettext_noop('Task failed'), REVOKED: gettext_noop('Task cancelled'),
  LOST: gettext_noop('Lost contact with the worker'),
  EXPIRED: gettext_noop('This task is no longer available: its details have expired'),
};
// Group mode: what is said when the whole group ends.
const GROUP_FINAL_ANNOUNCE = {
  SUCCESS: gettext_noop('All tasks done'), FAILURE: gettext_noop('Tasks finished with failures'),
  LOST: gettext_noop('Tasks finished with failures'), REVOKED: gettext_noop('Tasks finished, some cancelled'),
  EXPIRED: gettext_noop('Tasks finished, some no longer available'),
};
// After a member's name when it ends.
const MEMBER_ENDED = {
  SUCCESS: gettext_noop('%(name)s done'), FAILURE: gettext_noop('%(name)s failed'),
  REVOKED: gettext_noop('%(name)s cancelled'), LOST: gettext_noop('%(name)s lost contact with the worker'),
  EXPIRED: gettext_noop('%(name)s no longer available'),
};

/** What each step state is called (read out before a step's description). */
export const STEP_LABELS = Object.freeze({
  pending: gettext_noop('Pending'), running: gettext_noop('Running'), done: gettext_noop('Done'),
  failed: gettext_noop('Failed'), skipped: gettext_noop('Skipped'),
});

/** The label of `state` in `t`'s language, or '' for a state djenga does not know. */
export const stateLabel = (state, t = ENGLISH) => (Object.hasOwn(STATE_LABELS, state) ? t.gettext(STATE_LABELS[state]) : '');

/** What the live region says when a task ends in `state`, or ''. */
export const finalAnnouncement = (state, t = ENGLISH) => (FINAL_ANNOUNCE[state] ? t.gettext(FINAL_ANNOUNCE[state]) : '');

/** What the live region says when a group ends in `state`, or ''. */
export const groupFinalAnnouncement = (state, t = ENGLISH) =>
  (GROUP_FINAL_ANNOUNCE[state] ? t.gettext(GROUP_FINAL_ANNOUNCE[state]) : '');

/** "import_file done": the news that member `name` ended in `state`. */
export const memberEnded = (name, state, t = ENGLISH) => (MEMBER_ENDED[state] ? t.gettext(MEMBER_ENDED[state], { name }) : name);

/** "3 tasks done": `n` members ended in `state` (when too many end at once to name them). */
export function membersEnded(n, state, t = ENGLISH) {
  if (state === 'SUCCESS') return t.ngettext('%(n)s task done', '%(n)s tasks done', n);
  if (state === 'REVOKED') return t.ngettext('%(n)s task cancelled', '%(n)s tasks cancelled', n);
  if (state === 'EXPIRED') return t.ngettext('%(n)s task no longer available', '%(n)s tasks no longer available', n);
  return t.ngettext('%(n)s task failed', '%(n)s tasks failed', n);
}

export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
// Task text is untrusted and loosely typed; anything that isn't a string or number shows as nothing.
export const text = (v) => (typeof v === 'string' || num(v) !== null ? String(v) : '');
const clamp = (v, low, high) => Math.min(high, Math.max(low, v));

/** A duration in ms as "0.4 sec", "12 sec", "3 min, 5 sec" or "2 hr, 7 min" in `t`'s language; '' if unknown. */
export function formatElapsed(ms, t = ENGLISH) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  const seconds = Math.max(0, ms) / 1000;
  // Truncate (never round up) so a ticking clock doesn't show a second that hasn't passed yet.
  if (seconds < 10) return t.unit(Math.floor(seconds * 10 + 1e-6) / 10, 'second', 1);
  const total = Math.floor(seconds);
  if (total < 60) return t.unit(total, 'second');
  if (total < 3600) return t.duration({ minutes: Math.floor(total / 60), seconds: total % 60 });
  return t.duration({ hours: Math.floor(total / 3600), minutes: Math.floor(total / 60) % 60 });
}

/** "about 8 sec left", "about 3 min left", or "almost done" at 0; '' if unknown. Takes seconds. */
export function formatEta(seconds, t = ENGLISH) {
  if (num(seconds) === null) return '';
  const whole = Math.ceil(seconds - 1e-6); // round up: "about 0 s left" would be a broken promise
  if (whole <= 0) return t.gettext('almost done');
  let time;
  if (whole < 60) time = t.unit(whole, 'second');
  else if (whole < 3600) time = t.unit(Math.round(whole / 60), 'minute');
  else time = formatElapsed(whole * 1000, t);
  return t.gettext('about %(time)s left', { time });
}

// From `start` (seconds since epoch) to `end`, or while unended to `nowMs`; null without a start.
const spanMs = (start, end, nowMs) => (start === null ? null : (end !== null ? end * 1000 : nowMs) - start * 1000);

/**
 * Milliseconds a step has taken: the server's `duration` once it ended. A running step counts up
 * to `nowMs` (server clock), but never past `capMs`: once the task itself is final, a step stuck
 * in "running" must stop ticking.
 */
export function stepElapsedMs(step, nowMs, capMs = null) {
  const start = num(step?.started_at);
  const end = num(step?.ended_at);
  if (start === null || (end === null && step.state !== 'running')) return null;
  if (end !== null && num(step.duration) !== null) return step.duration * 1000;
  return spanMs(start, end, capMs ?? nowMs);
}

/** Milliseconds the task has taken, counting up to `nowMs` while it runs (`capMs` as for steps). */
export function taskElapsedMs(snap, nowMs, capMs = null) {
  return spanMs(num(snap?.started_at), num(snap?.ended_at), capMs ?? nowMs);
}

/** Seconds the task has left at `nowMs` (server clock): `eta` counted down since `updated_at`, never below 0. */
export function etaSeconds(snap, nowMs) {
  const eta = num(snap?.eta);
  if (eta === null || isFinalState(snap.state)) return null;
  const updatedAt = num(snap.updated_at);
  return Math.max(0, eta - (updatedAt === null ? 0 : Math.max(0, nowMs / 1000 - updatedAt)));
}

/** A step's own progress when it reports a total: {percent (0-100), text: "3 of 10"}, else null. */
export function stepProgress(step, t = ENGLISH) {
  const total = num(step?.total);
  if (total === null || total <= 0) return null;
  const done = num(step.done) ?? 0;
  const percent = Math.round(clamp(done / total, 0, 1) * 10000) / 100; // two decimals keep style.width stable
  return { percent, text: t.gettext('%(done)s of %(total)s', { done: t.number(done), total: t.number(total) }) };
}

/**
 * Resolve a URL template ("{task-id}" is substituted) against `base` and add the non-empty
 * params. With `websocket`, http(s) becomes ws(s) so a plain path works on any page.
 */
export function buildUrl(template, taskId, params = {}, { base = globalThis.location?.href, websocket = false } = {}) {
  const url = new URL(String(template).replaceAll('{task-id}', encodeURIComponent(taskId)), base);
  if (websocket && url.protocol === 'http:') url.protocol = 'ws:';
  if (websocket && url.protocol === 'https:') url.protocol = 'wss:';
  for (const [key, value] of Object.entries(params)) if (value != null && value !== '') url.searchParams.set(key, String(value));
  return url.href;
}

/** Whether `incoming` should replace `shown`: a new epoch always wins, within one seq must grow. */
export function isNewer(shown, incoming) {
  if (!shown) return true;
  if ((incoming.epoch ?? null) !== (shown.epoch ?? null)) return true;
  // Without two comparable seqs we cannot prove staleness, so we prefer showing the data.
  if (num(shown.seq) === null || num(incoming.seq) === null) return true;
  return incoming.seq > shown.seq;
}

export const stepsOf = (snap) => (Array.isArray(snap?.steps) ? snap.steps.filter(isObject) : []);
const stateOf = (snap) => (typeof snap?.state === 'string' ? snap.state : '');

/**
 * The percent to show: the server's (every frame carries one), floored so 37.5 reads 37,
 * and 100 only for SUCCESS (anything else stops at 99, as on the server); null if absent.
 */
export function shownPercent(snap) {
  if (stateOf(snap) === 'SUCCESS') return 100;
  const percent = num(snap?.percent);
  // The epsilon keeps float noise such as 57.99999999999999 from reading one percent low.
  return percent === null ? null : Math.floor(clamp(percent, 0, 99) + 1e-9);
}

/** The steps from the top level down to the task's current one (wire v2 `current_path`; a v1
 * snapshot names only a top-level `current`); [] when none runs. */
export function runningPath(snap) {
  const keys = Array.isArray(snap?.current_path) && snap.current_path.length ? snap.current_path : [snap?.current];
  const path = [];
  let level = stepsOf(snap);
  for (const key of keys) {
    const step = key == null ? null : level.find((s) => s.key != null && String(s.key) === String(key));
    if (!step) break;
    path.push(step);
    level = Array.isArray(step.children) ? step.children.filter(isObject) : [];
  }
  return path;
}

/** Derive what the UI shows from a task snapshot, tolerating any missing field. */
export function summarize(snap, t = ENGLISH) {
  const steps = stepsOf(snap);
  const state = stateOf(snap);
  // `current` names a step key; if it doesn't match one, the running step is the next best guess.
  let index = snap?.current == null ? -1 : steps.findIndex((s) => s.key != null && String(s.key) === String(snap.current));
  if (index < 0) index = steps.findIndex((s) => s.state === 'running');
  // A running sub-step is named after its parents: "Export the orders › Write the CSV file".
  const path = runningPath(snap);
  const description = index < 0 ? ''
    : (path[0] === steps[index] && path.length > 1 ? path : [steps[index]]).map((s) => text(s.description))
      .filter(Boolean).join(' › ');
  let stepText = '';
  if (index >= 0) {
    const values = { index: t.number(index + 1), count: t.number(steps.length), description };
    stepText = description ? t.gettext('Step %(index)s of %(count)s: %(description)s', values)
      : t.gettext('Step %(index)s of %(count)s', values);
  }
  return {
    steps, state, percent: shownPercent(snap), current: index < 0 ? null : steps[index],
    valuetext: (isFinalState(state) ? stateLabel(state, t) : stepText || stateLabel(state, t)) || '',
    announcement: finalAnnouncement(state, t) || stepText,
  };
}

/** What one row of a group shows: member snapshot `snap` at position `index` (0-based). */
export function summarizeMember(snap, index, t = ENGLISH) {
  const { state: raw, percent, current } = summarize(snap, t);
  // Unknown states show as pending so part names and styling stay predictable.
  const state = Object.hasOwn(STATE_LABELS, raw) ? raw : 'PENDING';
  const name = text(snap?.name) || t.gettext('Task %(index)s', { index: t.number(index + 1) });
  let step;
  if (state === 'FAILURE') step = text(snap?.error?.message) || stateLabel(state, t);
  else if (isFinalState(state)) step = stateLabel(state, t);
  else step = [text(current?.description), text(current?.message)].filter(Boolean).join(' — ') || stateLabel(state, t);
  const label = percent === null ? t.gettext('%(name)s: %(step)s', { name, step })
    : t.gettext('%(name)s: %(percent)s, %(step)s', { name, step, percent: t.percent(percent) });
  return { name, state, percent, step, label };
}

/** Derive what the UI shows from a group snapshot: counts, overall percent and its members. */
export function summarizeGroup(snap, t = ENGLISH) {
  const members = Array.isArray(snap?.tasks) ? snap.tasks.filter(isObject) : [];
  const state = stateOf(snap);
  // The server's counts and total may cover members the list leaves out; the list is the fallback.
  const counts = isObject(snap?.counts) ? snap.counts : null;
  const count = (...states) => states.reduce((sum, s) => sum
    + (counts ? Math.max(0, num(counts[s]) ?? 0) : members.filter((m) => m.state === s).length), 0);
  const total = Math.max(0, num(snap?.total) ?? members.length);
  const values = { done: t.number(count('SUCCESS')), total: t.number(total) };
  const failed = count('FAILURE', 'LOST');
  const cancelled = count('REVOKED');
  const tail = [
    failed && t.gettext('%(n)s failed', { n: t.number(failed) }),
    cancelled && t.gettext('%(n)s cancelled', { n: t.number(cancelled) }),
  ].filter(Boolean);
  return {
    members, state, percent: shownPercent(snap), total,
    countText: snap ? t.list([t.gettext('%(done)s of %(total)s done', values), ...tail]) : '',
    valuetext: snap ? t.list([
      t.ngettext('%(done)s of %(total)s task done', '%(done)s of %(total)s tasks done', total, values), ...tail,
    ]) : '',
  };
}
