// <djenga-task-progress>: a dependency-free custom element that shows a djenga/Celery task's
// steps live, over a WebSocket with a JSON polling fallback (wire format v1). Given a
// `group-token` instead of a `task-id`, it shows a Celery group: one overall bar and a row per task.
//
// Attributes:
//   task-id        the task to watch (single-task mode; wins if group-token is set too)
//   token          the signed token for task-id
//   group-token    group mode: the signed token naming the group's tasks
//   ws-url         WebSocket URL template; default /ws/djenga/tasks/{task-id}/, or /ws/djenga/groups/
//   poll-url       polling URL template; default /djenga/tasks/{task-id}/, or /djenga/groups/
//   poll-interval  ms between polls when WebSockets fail (default 1000)
//   stay           keep listening after a final state (a re-run starts a new epoch)
//   label          heading; default the task's name, or "Tasks" in group mode
// Host attributes set: data-state (task or group state), data-connection, data-mode ("task" | "group").
// Parts: root, header, label, elapsed (time taken, ticking while the task runs), eta ("about 8 s left"),
//   count, state, bar, bar-fill, percent, error, status;
//   single-task: steps, step step-<state>, step-marker, step-description, step-elapsed, step-bar, step-bar-fill,
//   step-count ("3 of 10": step-bar and step-count only show for a step that reports a total), step-message;
//   group: tasks, task task-<state lowercased>, task-marker, task-name, task-step, task-bar, task-bar-fill.
// Events (bubbling, composed): djenga:update and djenga:done (detail: the task or group snapshot),
//   djenga:error (detail: {code, reason}).
// Colours: --djenga-text, -muted, -bg, -border, -accent, -done, -failed, -font, -radius, -bar-height,
//   --djenga-task-bar-height, --djenga-step-bar-height and --djenga-tasks-max-height (scrolls a long group list).
// Frames: single-task mode renders snapshots (no `type`, or "snapshot"), group mode "group" frames; any other
//   frame, such as the "recovery" message that may open a reconnect, is skipped.

// EXPIRED: the task's record outlived result_expires; what it did is no longer known.
const FINAL_STATES = new Set(['SUCCESS', 'FAILURE', 'REVOKED', 'LOST', 'EXPIRED']);
const STATE_LABELS = {
  PENDING: 'Waiting', STARTED: 'Started', PROGRESS: 'In progress', RETRY: 'Retrying',
  SUCCESS: 'Done', FAILURE: 'Failed', REVOKED: 'Cancelled', LOST: 'Lost contact with the worker',
  EXPIRED: 'No longer available',
};
// What the live region says when the task ends (the bar's valuetext reuses STATE_LABELS).
const FINAL_ANNOUNCE = {
  SUCCESS: 'Task done', FAILURE: 'Task failed', REVOKED: 'Task cancelled', LOST: 'Lost contact with the worker',
  EXPIRED: 'This task is no longer available: its details have expired',
};
// Group mode: what is said when the whole group ends, and after a member's name when it ends.
const GROUP_FINAL_ANNOUNCE = {
  SUCCESS: 'All tasks done', FAILURE: 'Tasks finished with failures', LOST: 'Tasks finished with failures',
  REVOKED: 'Tasks finished, some cancelled', EXPIRED: 'Tasks finished, some no longer available',
};
const MEMBER_FINAL_WORDS = {
  SUCCESS: 'done', FAILURE: 'failed', REVOKED: 'cancelled', LOST: 'lost contact with the worker',
  EXPIRED: 'no longer available',
};
const MAX_NAMED_ANNOUNCEMENTS = 3; // more members ending in one frame are counted, not named
const STEP_MARKERS = { done: '✓', failed: '✗', running: '…', pending: '○', skipped: '–' };
const TASK_MARKERS = {
  SUCCESS: STEP_MARKERS.done, FAILURE: STEP_MARKERS.failed, REVOKED: STEP_MARKERS.failed, LOST: STEP_MARKERS.failed,
  EXPIRED: STEP_MARKERS.skipped,
  STARTED: STEP_MARKERS.running, PROGRESS: STEP_MARKERS.running, RETRY: STEP_MARKERS.running, PENDING: STEP_MARKERS.pending,
};
const FORBIDDEN_TEXT = 'You are not allowed to watch this task.';
const GROUP_FORBIDDEN_TEXT = 'You are not allowed to watch these tasks.';
const BAD_FRAME_TEXT = 'Live updates stopped: the server rejected this connection.';
const DEFAULT_URLS = {
  task: { ws: '/ws/djenga/tasks/{task-id}/', poll: '/djenga/tasks/{task-id}/' },
  group: { ws: '/ws/djenga/groups/', poll: '/djenga/groups/' }, // the group token is the whole query
};
const BACKOFF_START_MS = 250;
const BACKOFF_CAP_MS = 5000;
const FAILS_BEFORE_POLLING = 3;
const WS_RETRY_WHILE_POLLING_MS = 15000;

// ---------------------------------------------------------------------------------------------
// Pure helpers (exported so they can be unit-tested without a DOM).

export const isFinalState = (state) => FINAL_STATES.has(state);

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
// Task text is untrusted and loosely typed; anything that isn't a string or number shows as nothing.
const text = (v) => (typeof v === 'string' || num(v) !== null ? String(v) : '');
const clamp = (v, low, high) => Math.min(high, Math.max(low, v));
// A count as people write it: 3 (never 3.0), 2.5, at most two decimals.
const formatCount = (n) => String(Math.round(n * 100) / 100);

/** Format a duration in ms as "0.4 s", "12 s", "3 min 05 s" or "2 h 07 min"; '' if unknown. */
export function formatElapsed(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  const seconds = Math.max(0, ms) / 1000;
  // Truncate (never round up) so a ticking clock doesn't show a second that hasn't passed yet.
  if (seconds < 10) return `${(Math.floor(seconds * 10 + 1e-6) / 10).toFixed(1)} s`;
  const total = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, '0');
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${pad(total % 60)} s`;
  return `${Math.floor(total / 3600)} h ${pad(Math.floor(total / 60) % 60)} min`;
}

/** "about 8 s left", "about 3 min left", or "almost done" at 0; '' if unknown. Takes seconds. */
export function formatEta(seconds) {
  if (num(seconds) === null) return '';
  const whole = Math.ceil(seconds - 1e-6); // round up: "about 0 s left" would be a broken promise
  if (whole <= 0) return 'almost done';
  if (whole < 60) return `about ${whole} s left`;
  return `about ${whole < 3600 ? `${Math.round(whole / 60)} min` : formatElapsed(whole * 1000)} left`;
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
export function stepProgress(step) {
  const total = num(step?.total);
  if (total === null || total <= 0) return null;
  const done = num(step.done) ?? 0;
  const percent = Math.round(clamp(done / total, 0, 1) * 10000) / 100; // two decimals keep style.width stable
  return { percent, text: `${formatCount(done)} of ${formatCount(total)}` };
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

const stepsOf = (snap) => (Array.isArray(snap?.steps) ? snap.steps.filter(isObject) : []);
const stateOf = (snap) => (typeof snap?.state === 'string' ? snap.state : '');
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// Floor, not round: "100%" must only ever show for a finished task (and 37.5 reads "37%").
// The epsilon keeps float noise such as 57.99999999999999 from reading one percent low.
const floorPercent = (p) => (p === null ? null : Math.floor(clamp(p, 0, 100) + 1e-9));

/** Derive what the UI shows from a snapshot, tolerating any missing field. */
export function summarize(snap) {
  const steps = stepsOf(snap);
  const state = stateOf(snap);
  // `current` names a step key; if it doesn't match one, the running step is the next best guess.
  let index = snap?.current == null ? -1 : steps.findIndex((s) => s.key != null && String(s.key) === String(snap.current));
  if (index < 0) index = steps.findIndex((s) => s.state === 'running');
  const description = index < 0 ? '' : text(steps[index].description);
  const stepText = index < 0 ? '' : `Step ${index + 1} of ${steps.length}${description ? `: ${description}` : ''}`;
  let percent = num(snap?.percent);
  if (state === 'SUCCESS') percent = 100;
  else {
    if (percent === null && steps.length) {
      percent = (100 * steps.filter((s) => ['done', 'failed', 'skipped'].includes(s.state)).length) / steps.length;
    }
    // As on the server (docs/snapshot.md): 100 means SUCCESS, so anything else stops at 99.
    if (percent !== null) percent = Math.min(percent, 99);
  }
  return {
    steps, state, percent: floorPercent(percent), current: index < 0 ? null : steps[index],
    valuetext: (isFinalState(state) ? STATE_LABELS[state] : stepText || STATE_LABELS[state]) || '',
    announcement: FINAL_ANNOUNCE[state] || stepText,
  };
}

/** What one row of a group shows: member snapshot `snap` at position `index` (0-based). */
export function summarizeMember(snap, index) {
  const { state: raw, percent, current } = summarize(snap);
  // Unknown states show as pending so part names and styling stay predictable.
  const state = Object.hasOwn(STATE_LABELS, raw) ? raw : 'PENDING';
  const name = text(snap?.name) || `Task ${index + 1}`;
  let step;
  if (state === 'FAILURE') step = text(snap?.error?.message) || 'Failed';
  else if (isFinalState(state)) step = STATE_LABELS[state];
  else step = [text(current?.description), text(current?.message)].filter(Boolean).join(' — ') || STATE_LABELS[state];
  return { name, state, percent, step, label: `${name}: ${percent === null ? '' : `${percent}%, `}${step}` };
}

/** Derive what the UI shows from a group snapshot: counts, overall percent and its members. */
export function summarizeGroup(snap) {
  const members = Array.isArray(snap?.tasks) ? snap.tasks.filter(isObject) : [];
  const state = stateOf(snap);
  // The server's counts and total may cover members the list leaves out; the list is the fallback.
  const counts = isObject(snap?.counts) ? snap.counts : null;
  const count = (...states) => states.reduce((sum, s) => sum
    + (counts ? Math.max(0, num(counts[s]) ?? 0) : members.filter((m) => m.state === s).length), 0);
  const total = Math.max(0, num(snap?.total) ?? members.length);
  const done = count('SUCCESS');
  const tail = [[count('FAILURE', 'LOST'), 'failed'], [count('REVOKED'), 'cancelled']]
    .filter(([n]) => n > 0).map(([n, word]) => `, ${n} ${word}`).join('');
  let percent = num(snap?.percent);
  if (state === 'SUCCESS') percent = 100;
  else if (percent === null && members.length) {
    percent = members.reduce((sum, m) => sum + (isFinalState(m.state) ? 100 : summarize(m).percent ?? 0), 0) / members.length;
  }
  return {
    members, state, percent: floorPercent(percent), total,
    countText: snap ? `${done} of ${total} done${tail}` : '',
    valuetext: snap ? `${done} of ${total} ${total === 1 ? 'task' : 'tasks'} done${tail}` : '',
  };
}

// ---------------------------------------------------------------------------------------------
// Shadow DOM template: static markup only. Task data is never put through innerHTML.

const TEMPLATE = `
<style>
  :host {
    --_text: var(--djenga-text, #1f2328); --_muted: var(--djenga-muted, #59636e);
    --_bg: var(--djenga-bg, #ffffff); --_border: var(--djenga-border, #d1d9e0);
    --_accent: var(--djenga-accent, #0969da); --_done: var(--djenga-done, #1a7f37);
    --_failed: var(--djenga-failed, #cf222e);
    display: block; line-height: 1.4; color: var(--_text);
    font-family: var(--djenga-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  }
  :host([hidden]) { display: none; }
  .djenga-root {
    position: relative; box-sizing: border-box; padding: 12px 14px; background: var(--_bg);
    border: 1px solid var(--_border); border-radius: var(--djenga-radius, 8px);
  }
  .djenga-header { display: flex; align-items: baseline; justify-content: space-between; gap: 8px; margin-bottom: 8px; }
  .djenga-label { flex: 1; font-weight: 600; overflow-wrap: anywhere; }
  :is(.djenga-elapsed, .djenga-eta, .djenga-count) {
    flex: none; font-size: 0.85em; font-variant-numeric: tabular-nums; color: var(--_muted); white-space: nowrap;
  }
  .djenga-state { flex: none; font-size: 0.8em; padding: 0 0.6em; border: 1px solid; border-radius: 999px; }
  :is(.djenga-state, .djenga-eta, .djenga-count, .djenga-error, .djenga-status, .djenga-steps, .djenga-tasks,
    .djenga-step-message, .djenga-step-elapsed, .djenga-step-count, .djenga-task-step):empty { display: none; }
  .djenga-root [hidden] { display: none !important; }
  .djenga-progress { display: flex; align-items: center; gap: 10px; }
  :is(.djenga-bar, .djenga-task-bar, .djenga-step-bar) {
    overflow: hidden; border-radius: 999px; background: color-mix(in srgb, var(--_border) 60%, transparent);
  }
  .djenga-bar { flex: 1; height: var(--djenga-bar-height, 8px); }
  .djenga-bar:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
  :is(.djenga-bar-fill, .djenga-task-bar-fill, .djenga-step-bar-fill) {
    width: 0; height: 100%; transition: width 0.3s ease-out;
  }
  @media (prefers-reduced-motion: reduce) {
    :is(.djenga-bar-fill, .djenga-task-bar-fill, .djenga-step-bar-fill) { transition: none; }
  }
  .djenga-percent { min-width: 4ch; text-align: right; font-variant-numeric: tabular-nums; color: var(--_muted); }
  /* Four colours for the task's state: running (accent), done, failed, and muted for the rest. */
  :host(:is([data-state="STARTED"], [data-state="PROGRESS"], [data-state="RETRY"])) { --_tone: var(--_accent); }
  :host([data-state="SUCCESS"]) { --_tone: var(--_done); }
  :host(:is([data-state="FAILURE"], [data-state="LOST"])) { --_tone: var(--_failed); }
  :host([data-state="REVOKED"]) { --_tone: var(--_muted); }
  .djenga-state { color: var(--_tone, var(--_muted)); }
  .djenga-bar-fill { background: var(--_tone, var(--_accent)); }
  :is(.djenga-task-bar-fill, .djenga-step-bar-fill) { background: var(--_tone); } /* a row's own tone, set below */
  .djenga-steps { list-style: none; margin: 10px 0 0; padding: 0; }
  /* Steps: a row per step, toned by the step's state; a step reporting a total gets its own small bar. */
  .djenga-step {
    --_tone: var(--_muted);
    display: grid; grid-template-columns: 1.25em 1fr auto; column-gap: 0.5em; align-items: baseline; padding: 2px 0;
  }
  .djenga-step[data-state="done"] { --_tone: var(--_done); }
  .djenga-step[data-state="failed"] { --_tone: var(--_failed); }
  .djenga-step[data-state="running"] { --_tone: var(--_accent); }
  :is(.djenga-step-marker, .djenga-task-marker) { text-align: center; color: var(--_tone); }
  .djenga-step-description { overflow-wrap: anywhere; }
  :is(.djenga-step-elapsed, .djenga-step-count) {
    font-size: 0.85em; font-variant-numeric: tabular-nums; color: var(--_muted); white-space: nowrap; text-align: right;
  }
  .djenga-step-bar { grid-column: 2; align-self: center; height: var(--djenga-step-bar-height, 4px); margin: 2px 0; }
  .djenga-step-message { grid-column: 2 / -1; font-size: 0.85em; color: var(--_muted); overflow-wrap: anywhere; }
  .djenga-step[data-state="failed"] .djenga-step-description { color: var(--_failed); }
  .djenga-step[data-state="running"] .djenga-step-description { font-weight: 600; }
  .djenga-step:is([data-state="pending"], [data-state="skipped"]) .djenga-step-description { color: var(--_muted); }
  /* Group mode: one row per task, toned by the task's own state. */
  .djenga-tasks {
    list-style: none; margin: 10px 0 0; padding: 0;
    max-height: var(--djenga-tasks-max-height, none); overflow-y: auto;
  }
  .djenga-task {
    --_tone: var(--_muted);
    display: grid; grid-template-columns: 1.25em minmax(0, 1fr) minmax(3em, 25%); column-gap: 0.5em;
    align-items: center; padding: 3px 0;
  }
  .djenga-task:is([data-state="STARTED"], [data-state="PROGRESS"], [data-state="RETRY"]) { --_tone: var(--_accent); }
  .djenga-task[data-state="SUCCESS"] { --_tone: var(--_done); }
  .djenga-task:is([data-state="FAILURE"], [data-state="LOST"]) { --_tone: var(--_failed); }
  .djenga-task-name { overflow-wrap: anywhere; }
  .djenga-task-bar { height: var(--djenga-task-bar-height, 4px); }
  .djenga-task-step { grid-column: 2 / -1; font-size: 0.85em; color: var(--_muted); overflow-wrap: anywhere; }
  .djenga-task:is([data-state="FAILURE"], [data-state="LOST"]) .djenga-task-step { color: var(--_failed); }
  .djenga-error { margin: 10px 0 0; color: var(--_failed); overflow-wrap: anywhere; }
  .djenga-status { margin: 8px 0 0; font-size: 0.8em; color: var(--_muted); }
  .djenga-sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
</style>
<div class="djenga-root" part="root">
  <div class="djenga-header" part="header">
    <span class="djenga-label" part="label"></span>
    <span class="djenga-elapsed" part="elapsed" hidden><span class="djenga-sr">Time taken: </span><span></span></span>
    <span class="djenga-eta" part="eta"></span>
    <span class="djenga-count" part="count"></span>
    <span class="djenga-state" part="state"></span>
  </div>
  <div class="djenga-progress">
    <div class="djenga-bar" part="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" tabindex="0">
      <div class="djenga-bar-fill" part="bar-fill"></div>
    </div>
    <span class="djenga-percent" part="percent"></span>
  </div>
  <ol class="djenga-steps" part="steps"></ol>
  <ol class="djenga-tasks" part="tasks" hidden></ol>
  <p class="djenga-error" part="error"></p>
  <p class="djenga-status" part="status"></p>
  <div class="djenga-sr" aria-live="polite"></div>
</div>`;

function el(tag, className, part) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (part) node.setAttribute('part', part);
  return node;
}

const setOrRemove = (node, name, value) => (value ? node.setAttribute(name, value) : node.removeAttribute(name));
// Writes only what changed, so re-rendering a long list on every frame touches little of the DOM.
const setText = (node, value) => { if (node.textContent !== value) node.textContent = value; };
const setAttr = (node, name, value) => { if (node.getAttribute(name) !== value) node.setAttribute(name, value); };
const setWidth = (fill, percent) => {
  const width = `${percent ?? 0}%`;
  if (fill.style.width !== width) fill.style.width = width;
};

/** Set a fill's width without its transition: the first value shown is not a change to animate. */
function jumpWidth(fill, percent) {
  fill.style.transition = 'none';
  setWidth(fill, percent);
  fill.getBoundingClientRect(); // flush styles while the transition is off
  fill.style.removeProperty('transition');
}

/** A bar (part `part`) around its fill (part `part`-fill). */
function makeBar(className, part) {
  const bar = el('div', className, part);
  bar.append(el('div', `${className}-fill`, `${part}-fill`));
  return bar;
}

function makeMarker(className, part) {
  const marker = el('span', className, part);
  const symbol = el('span');
  symbol.setAttribute('aria-hidden', 'true'); // the glyph means nothing read aloud; the sr text says it
  marker.append(symbol, el('span', 'djenga-sr'));
  return marker;
}

function setMarker(marker, glyph, spoken) {
  setText(marker.firstChild, glyph);
  setText(marker.lastChild, spoken);
}

/** Give a step or task row (its marker first) a new state: data-state, part names and marker. */
function setRowState(li, state, part, glyph, spoken) {
  if (li.dataset.state === state) return;
  li.dataset.state = state;
  li.setAttribute('part', part);
  setMarker(li.firstChild, glyph, spoken);
}

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
function updateStepItem(li, step, index) {
  // Unknown states are shown as pending so part names and styling stay predictable.
  const state = Object.hasOwn(STEP_MARKERS, step.state) ? step.state : 'pending';
  setRowState(li, state, `step step-${state}`, STEP_MARKERS[state], `${state}: `);
  const [, description, , bar, count, message] = li.children;
  const progress = stepProgress(step);
  setText(description, text(step.description) || `Step ${index + 1}`);
  bar.hidden = !progress;
  setWidth(bar.firstChild, progress?.percent);
  setText(count, progress?.text ?? '');
  setText(message, text(step.message));
}

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
function updateTaskItem(li, { name, state, percent, step, label }) {
  const [, nameEl, bar, stepEl] = li.children;
  setRowState(li, state, `task task-${state.toLowerCase()}`, TASK_MARKERS[state], `${STATE_LABELS[state]}: `);
  setText(nameEl, name);
  setText(stepEl, step);
  setWidth(bar.firstChild, percent);
  setAttr(li, 'aria-label', label);
}

// ---------------------------------------------------------------------------------------------

export class DjengaTaskProgress extends HTMLElement {
  static observedAttributes = ['task-id', 'token', 'group-token', 'ws-url', 'poll-url', 'poll-interval', 'stay', 'label'];

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = TEMPLATE;
    const part = (name) => root.querySelector(`[part="${name}"]`);
    this._els = {
      label: part('label'), elapsed: part('elapsed'), eta: part('eta'), count: part('count'), state: part('state'),
      bar: part('bar'), fill: part('bar-fill'), percent: part('percent'), steps: part('steps'), tasks: part('tasks'),
      error: part('error'), status: part('status'),
      live: root.querySelector('[aria-live]'),
    };
    this._mode = 'closed'; // no attribute reflection here: constructors must not add host attributes
    this._gen = 0; // bumped on teardown so callbacks of old sockets/fetches can tell they are stale
    this._timers = {};
    this._live = false;
    this._resetState();
  }

  /** 'connecting' | 'websocket' | 'polling' | 'closed' */
  get connection() { return this._mode; }

  /** The last rendered snapshot (a group snapshot in group mode), or null. */
  get snapshot() { return this._snap; }

  connectedCallback() {
    this._live = true;
    // Attributes changed while detached are not seen live: start afresh if they name something else.
    if (this._sourceKey() !== this._source) this._resetState();
    this.setAttribute('data-mode', this._group ? 'group' : 'task');
    this._render();
    this._start();
  }

  disconnectedCallback() {
    this._live = false;
    this._teardown();
    this._setMode('closed');
  }

  attributeChangedCallback(name, oldValue, newValue) {
    // Before connectedCallback the parser reports every initial attribute; connecting handles those.
    if (oldValue === newValue || !this._live) return;
    if (name === 'label') this._render();
    else if (name === 'poll-interval' && this._polling) this._setStatus(this._pollingStatus());
    else if (['task-id', 'token', 'group-token', 'ws-url'].includes(name) && !this._restartQueued) {
      // Coalesce e.g. a task-id and token set in the same tick into a single reconnect.
      this._restartQueued = true;
      queueMicrotask(() => {
        this._restartQueued = false;
        if (!this._live) return;
        this._teardown();
        this._resetState();
        this.setAttribute('data-mode', this._group ? 'group' : 'task');
        this._render();
        this._start();
      });
    }
    // poll-url and stay are read whenever the next request is made.
  }

  // --- connection management ------------------------------------------------------------------

  _sourceKey() {
    return ['task-id', 'token', 'group-token'].map((name) => this.getAttribute(name) ?? '').join('\n');
  }

  _resetState() {
    // Group mode: a group-token and no task-id. Fixed until the attributes change (which resets).
    this._group = !this.getAttribute('task-id') && this.hasAttribute('group-token');
    this._source = this._sourceKey();
    this._els.steps.hidden = this._group;
    this._els.tasks.hidden = !this._group;
    this._els.steps.replaceChildren();
    this._els.tasks.replaceChildren();
    this._rows = new Map(); // group mode: row key -> <li>, so rows are reused across frames
    this._memberStates = new Map(); // group mode: row key -> last member state, for announcements
    this._snap = null;
    this._offset = null; // server clock minus client clock, in ms
    this._final = this._doneFired = this._everOpened = this._polling = this._noWebSocket = this._barShown = false;
    this._fatal = ''; // set once forbidden / rejected: nothing reconnects until the task, group, token or ws-url change
    this._announced = null; // null = nothing rendered yet
    this._attempt = this._failsWithoutOpen = 0;
    this._els.live.textContent = this._els.status.textContent = '';
    this._setClockText('', ''); // group mode never sets these: clear what a task showed
  }

  _start() {
    if (this._fatal || (this._final && !this.hasAttribute('stay'))) return this._setMode('closed');
    if (!this.getAttribute(this._group ? 'group-token' : 'task-id')) {
      console.warn('<djenga-task-progress> needs a task-id (or a group-token) attribute');
      return this._setMode('closed');
    }
    this._openSocket();
  }

  _teardown() {
    this._gen++;
    this._closeSocket();
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
    this._abort?.abort();
    this._abort = null;
    this._polling = false;
  }

  _openSocket() {
    if (this._noWebSocket || typeof WebSocket === 'undefined') {
      this._noWebSocket = true;
      return this._startPolling();
    }
    let ws;
    try {
      ws = new WebSocket(this._wsUrl());
    } catch (err) {
      console.warn('<djenga-task-progress> could not open a WebSocket', err);
      return this._startPolling();
    }
    this._ws = ws;
    if (!this._polling) this._setMode('connecting'); // a background retry while polling stays 'polling'
    // A socket counts as working once the server sent something on it: one that opens and
    // is closed at once (4503 "overloaded", 1011 "Redis unreachable") is a failed attempt,
    // so enough of them in a row fall back to polling like sockets that never open.
    let servedAt = 0;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._everOpened = true;
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      if (!servedAt) {
        servedAt = Date.now();
        this._failsWithoutOpen = 0;
        this._stopPolling();
        this._setMode('websocket');
        this._setStatus('');
      }
      this._attempt = 0; // data flowing is proof the connection is healthy
      this._receive(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onSocketClose(event, servedAt);
    };
  }

  _onSocketClose({ code, reason }, openedAt) {
    if (code === 4403 || code === 4400) return this._fail(code, reason);
    // After a final state there is nothing more to wait for, unless `stay` asked to keep
    // listening (e.g. for a re-run under a new epoch) and the close was not a deliberate 1000.
    if (this._final && (!this.hasAttribute('stay') || code === 1000)) {
      this._setStatus('');
      return this._setMode('closed');
    }
    if (!openedAt) {
      this._failsWithoutOpen++;
      if (this._polling) return this._scheduleWsRetry();
      if (this._failsWithoutOpen >= FAILS_BEFORE_POLLING && !this._final) return this._startPolling();
    } else if (Date.now() - openedAt > 5000) {
      this._attempt = 0; // a long-lived socket dropping is a fresh incident, not a retry storm
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** Math.min(this._attempt++, 10));
    // "Equal jitter": half fixed, half random, so a restarted server isn't hit by every tab at once.
    const delay = base / 2 + (Math.random() * base) / 2;
    this._setMode('connecting');
    if (this._everOpened) this._setStatus('Reconnecting…');
    this._setTimer('reconnect', () => this._openSocket(), delay);
  }

  _closeSocket() {
    const ws = this._ws;
    this._ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(1000); } catch { /* already closing */ }
  }

  _wsUrl() {
    const params = { stay: this.hasAttribute('stay') ? '1' : null };
    // Tell the server what we already show so it can skip re-sending it.
    if (this._snap) Object.assign(params, { seq: num(this._snap.seq), epoch: this._snap.epoch });
    return this._url('ws', params);
  }

  /** The `kind` ('ws' | 'poll') URL for this task or group, with its token first. */
  _url(kind, params = {}) {
    const group = this._group;
    const template = this.getAttribute(`${kind}-url`) || DEFAULT_URLS[group ? 'group' : 'task'][kind];
    return buildUrl(template, group ? '' : this.getAttribute('task-id'),
      { token: this.getAttribute(group ? 'group-token' : 'token'), ...params }, { websocket: kind === 'ws' });
  }

  // --- polling fallback ------------------------------------------------------------------------

  _pollInterval() {
    const ms = Number(this.getAttribute('poll-interval'));
    return Number.isFinite(ms) && ms > 0 ? Math.max(ms, 100) : 1000;
  }

  _pollingStatus() {
    return `Live updates unavailable, checking every ${+(this._pollInterval() / 1000).toFixed(1)} s`;
  }

  _startPolling() {
    if (this._fatal || this._final) return;
    if (!this._polling) {
      this._polling = true;
      this._setMode('polling');
      this._setStatus(this._pollingStatus());
      this._poll();
    }
    if (!this._noWebSocket) this._scheduleWsRetry();
  }

  _scheduleWsRetry() { this._setTimer('wsRetry', () => this._openSocket(), WS_RETRY_WHILE_POLLING_MS); }

  _stopPolling() {
    this._polling = false;
    this._clearTimer('poll');
    this._clearTimer('wsRetry');
    this._abort?.abort();
    this._abort = null;
  }

  async _poll() {
    const gen = this._gen;
    const controller = (this._abort = new AbortController());
    try {
      const res = await fetch(this._url('poll'), {
        credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store', signal: controller.signal,
      });
      if (res.status === 403 && gen === this._gen && this._polling) return this._fail(403, res.statusText || 'Forbidden');
      const body = res.ok ? await res.json() : null;
      if (gen !== this._gen || !this._polling) return;
      if (res.ok) this._receive(body);
      else console.warn(`<djenga-task-progress> poll answered HTTP ${res.status}`);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      console.warn('<djenga-task-progress> poll failed', err);
    }
    // Chained timeouts rather than setInterval, so a slow server never has two requests in flight.
    if (gen === this._gen && this._polling) this._setTimer('poll', () => this._poll(), this._pollInterval());
  }

  // --- snapshots -------------------------------------------------------------------------------

  _receive(data) {
    let snap = data;
    if (typeof data === 'string') {
      try { snap = JSON.parse(data); } catch { snap = undefined; }
    }
    if (!isObject(snap)) {
      console.warn('<djenga-task-progress> ignoring a frame that is not a JSON object', data);
      return;
    }
    // Only snapshots are rendered: untyped (or "snapshot") frames of a task, "group" frames of a
    // group. The "recovery" message a reconnect may open with carries no state, so it is skipped.
    if (snap.type != null && snap.type !== (this._group ? 'group' : 'snapshot')) {
      const mode = this._group ? 'group' : 'task';
      if (snap.type === 'recovery') return;
      console.warn(`<djenga-task-progress> ignoring a ${text(snap.type) || 'non-snapshot'} frame in ${mode} mode`);
      return;
    }
    if (num(snap.v) !== null && snap.v > 1 && !this._warnedVersion) {
      this._warnedVersion = true;
      console.warn(`<djenga-task-progress> wire format v${snap.v} is newer than v1; rendering what is understood`);
    }
    const updatedAt = num(snap.updated_at);
    if (updatedAt !== null) {
      // Every snapshot's updated_at is at or before the server's "now", so each sample is a lower
      // bound of the clock offset; keeping the largest avoids under-counting when a poll returns
      // an older unchanged snapshot.
      const offset = updatedAt * 1000 - Date.now();
      this._offset = this._offset === null ? offset : Math.max(this._offset, offset);
    }
    const prev = this._snap;
    if (!isNewer(prev, snap)) return;
    if (prev && (snap.epoch ?? null) !== (prev.epoch ?? null)) this._doneFired = false; // a re-run may finish again
    this._snap = snap;
    this._final = isFinalState(snap.state);
    this._render();
    const news = this._group ? this._groupNews(prev, snap) : this._taskNews(snap);
    if (news) this._els.live.textContent = news;

    this._emit('djenga:update', snap);
    if (this._final) this._finish();
  }

  /** What the live region should say about a new task snapshot, or ''. */
  _taskNews(snap) {
    const before = this._announced; // null = nothing rendered yet
    const { announcement } = summarize(snap);
    if (announcement || before === null) this._announced = announcement;
    // Only announce changes; the first snapshot is already on screen, unless it is the outcome.
    if (!announcement) return '';
    return (before === null ? this._final : announcement !== before) ? announcement : '';
  }

  /**
   * What the live region should say about a new group snapshot, or '': the members that have
   * just ended ("import_file done"), then how far the group is, or how it ended.
   */
  _groupNews(prev, snap) {
    const before = this._memberStates;
    const now = new Map();
    const ended = [];
    const group = summarizeGroup(snap);
    group.members.forEach((member, i) => {
      const key = rowKey(member, i, now);
      const { name, state } = summarizeMember(member, i);
      now.set(key, state);
      // The first snapshot is already on screen: only later changes are news.
      if (prev && isFinalState(state) && !isFinalState(before.get(key))) ended.push([name, MEMBER_FINAL_WORDS[state]]);
    });
    this._memberStates = now;
    let news = ended.map(([name, word]) => `${name} ${word}`);
    if (ended.length > MAX_NAMED_ANNOUNCEMENTS) {
      const tally = new Map();
      for (const [, word] of ended) tally.set(word, (tally.get(word) || 0) + 1);
      news = [[...tally].map(([word, n]) => `${plural(n, 'task')} ${word}`).join(', ')];
    }
    if (this._final && !isFinalState(prev?.state)) news.push(GROUP_FINAL_ANNOUNCE[snap.state]);
    // Names repeat in a group (ten "import_file"s): the running count keeps each message distinct.
    else if (news.length) news.push(group.countText);
    return news.join('. ');
  }

  _finish() {
    if (!this._doneFired) {
      this._doneFired = true;
      this._emit('djenga:done', this._snap);
    }
    this._clearTimer('reconnect');
    // An open socket is left for the server to close (code 1000, or never with `stay`); anything
    // else (polling, a background retry, a socket still connecting) ends here.
    if (this._mode !== 'websocket') {
      this._stopPolling();
      this._closeSocket();
      this._setMode('closed');
      this._setStatus('');
    }
  }

  _fail(code, reason) {
    this._teardown();
    this._fatal = code === 4400 ? BAD_FRAME_TEXT : this._group ? GROUP_FORBIDDEN_TEXT : FORBIDDEN_TEXT;
    this._setMode('closed');
    this._setStatus('');
    this._render();
    this._els.live.textContent = this._fatal;
    this._emit('djenga:error', { code, reason: reason || '' });
  }

  // --- rendering -------------------------------------------------------------------------------

  _render() {
    if (this._group) this._renderGroup();
    else this._renderTask();
  }

  /** The parts both modes share: host state, header and the one overall progressbar. */
  _renderHead({ state, label, count, percent, valuetext, error }) {
    const els = this._els;
    if (this._live) setOrRemove(this, 'data-state', state);
    els.label.textContent = label;
    els.count.textContent = count;
    els.state.textContent = state ? STATE_LABELS[state] || state : '';
    els.bar.setAttribute('aria-label', label);
    // With no number yet, leaving aria-valuenow out makes the bar "indeterminate" to assistive tech.
    setOrRemove(els.bar, 'aria-valuenow', percent === null ? '' : String(percent));
    setOrRemove(els.bar, 'aria-valuetext', valuetext);
    // A page opened on a finished (or half-done) task shows its width at once rather than growing
    // it from 0, so a screenshot or a glance right after the first frame is already right.
    if (this._barShown || percent === null) setWidth(els.fill, percent);
    else jumpWidth(els.fill, percent);
    this._barShown ||= percent !== null;
    els.percent.textContent = percent === null ? '' : `${percent}%`;
    els.error.textContent = this._fatal || error;
  }

  _renderGroup() {
    const snap = this._snap;
    const { members, state, percent, countText, valuetext } = summarizeGroup(snap);
    this._renderHead({
      state, label: this.getAttribute('label') || 'Tasks', count: countText, percent, valuetext,
      error: text(snap?.error?.message), // members' errors are in their rows
    });
    // Rows are keyed by task_id and only moved when the order changes, so a frame of a
    // 200-task group costs a few text updates, not a rebuilt list.
    const list = this._els.tasks;
    const rows = new Map();
    members.forEach((member, i) => {
      const key = rowKey(member, i, rows);
      const li = this._rows.get(key) || makeTaskItem();
      rows.set(key, li);
      updateTaskItem(li, summarizeMember(member, i));
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    for (const [key, li] of this._rows) if (!rows.has(key)) li.remove();
    this._rows = rows;
  }

  _renderTask() {
    const snap = this._snap;
    const { steps, state, percent, valuetext } = summarize(snap);
    this._renderHead({
      state, label: this.getAttribute('label') || text(snap?.name) || 'Task progress', count: '', percent, valuetext,
      // Only error.message is ever shown: tracebacks stay server-side even if a field carries one.
      error: state === 'FAILURE' ? text(snap?.error?.message) || 'The task failed.' : '',
    });

    const list = this._els.steps;
    while (list.children.length > steps.length) list.lastElementChild.remove();
    steps.forEach((step, i) => updateStepItem(list.children[i] || list.appendChild(makeStepItem()), step, i));
    this._renderClock();

    // The clocks (task elapsed, eta, running steps) tick on server time between frames.
    const ticking = this._live && !this._final && !this._fatal && (num(snap?.started_at) !== null || num(snap?.eta) !== null
      || steps.some((s) => s.state === 'running' && num(s.started_at) !== null && num(s.ended_at) === null));
    if (ticking && !this._timers.tick) this._timers.tick = setInterval(() => this._renderClock(), 1000);
    else if (!ticking) this._clearTimer('tick');
  }

  /** The time texts: the task's elapsed and eta in the header, each step's elapsed. */
  _renderClock() {
    const snap = this._snap;
    const items = this._els.steps.children;
    const now = Date.now() + (this._offset ?? 0);
    // Once the task is final, nothing counts past its last update.
    const cap = this._final && num(snap?.updated_at) !== null ? snap.updated_at * 1000 : null;
    this._setClockText(formatElapsed(taskElapsedMs(snap, now, cap)), formatEta(etaSeconds(snap, now)));
    stepsOf(snap).forEach((step, i) => {
      if (items[i]) setText(items[i].children[2], formatElapsed(stepElapsedMs(step, now, cap)));
    });
  }

  _setClockText(elapsed, eta) {
    const els = this._els;
    els.elapsed.hidden = !elapsed;
    setText(els.elapsed.lastChild, elapsed);
    setText(els.eta, eta);
  }

  // --- small utilities -------------------------------------------------------------------------

  _setMode(mode) {
    this._mode = mode;
    if (this._live || this.hasAttribute('data-connection')) this.setAttribute('data-connection', mode);
  }

  _setStatus(message) { this._els.status.textContent = message; }

  _setTimer(name, fn, ms) {
    this._clearTimer(name);
    this._timers[name] = setTimeout(() => { delete this._timers[name]; fn(); }, ms);
  }

  _clearTimer(name) {
    // clearTimeout also clears setInterval ids: both share one id pool in browsers.
    clearTimeout(this._timers[name]);
    delete this._timers[name];
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true })); }
}

if (!customElements.get('djenga-task-progress')) {
  customElements.define('djenga-task-progress', DjengaTaskProgress);
}
