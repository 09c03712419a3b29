// The widget's shadow DOM: static markup (task data never goes through innerHTML), the small
// builders of rows and bars, and the header and bar both views share.

export const TEMPLATE = `
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
  .djenga-percent { min-width: 4ch; text-align: end; font-variant-numeric: tabular-nums; color: var(--_muted); }
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
    font-size: 0.85em; font-variant-numeric: tabular-nums; color: var(--_muted); white-space: nowrap; text-align: end;
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
    <span class="djenga-elapsed" part="elapsed" hidden><span class="djenga-sr"></span><span></span></span>
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

/** The named parts of a freshly built shadow root. */
export function findParts(root) {
  const part = (name) => root.querySelector(`[part="${name}"]`);
  return {
    root: part('root'), label: part('label'), elapsed: part('elapsed'), eta: part('eta'), count: part('count'),
    state: part('state'), bar: part('bar'), fill: part('bar-fill'), percent: part('percent'), steps: part('steps'),
    tasks: part('tasks'), error: part('error'), status: part('status'), live: root.querySelector('[aria-live]'),
  };
}

export function el(tag, className, part) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (part) node.setAttribute('part', part);
  return node;
}

export const setOrRemove = (node, name, value) => (value ? node.setAttribute(name, value) : node.removeAttribute(name));
// Writes only what changed, so re-rendering a long list on every frame touches little of the DOM.
export const setText = (node, value) => { if (node.textContent !== value) node.textContent = value; };
export const setAttr = (node, name, value) => { if (node.getAttribute(name) !== value) node.setAttribute(name, value); };
export const setWidth = (fill, percent) => {
  const width = `${percent ?? 0}%`;
  if (fill.style.width !== width) fill.style.width = width;
};

/** Set a fill's width without its transition: the first value shown is not a change to animate. */
export function jumpWidth(fill, percent) {
  fill.style.transition = 'none';
  setWidth(fill, percent);
  fill.getBoundingClientRect(); // flush styles while the transition is off
  fill.style.removeProperty('transition');
}

/** A bar (part `part`) around its fill (part `part`-fill). */
export function makeBar(className, part) {
  const bar = el('div', className, part);
  bar.append(el('div', `${className}-fill`, `${part}-fill`));
  return bar;
}

export function makeMarker(className, part) {
  const marker = el('span', className, part);
  const symbol = el('span');
  symbol.setAttribute('aria-hidden', 'true'); // the glyph means nothing read aloud; the sr text says it
  marker.append(symbol, el('span', 'djenga-sr'));
  return marker;
}

export function setMarker(marker, glyph, spoken) {
  setText(marker.firstChild, glyph);
  setText(marker.lastChild, spoken);
}

/** Give a step or task row a new state: data-state, part names and its marker (by default
 * its first child; a workflow's stage and task rows keep theirs in a head). */
export function setRowState(li, state, part, glyph, spoken, marker = li.firstChild) {
  if (li.dataset.state === state) return;
  li.dataset.state = state;
  li.setAttribute('part', part);
  setMarker(marker, glyph, spoken);
}

/** Keep `list` at `n` children, reusing the ones there and adding ones made by `make`; the children. */
export function sized(list, n, make) {
  while (list.children.length > n) list.lastElementChild.remove();
  while (list.children.length < n) list.append(make());
  return [...list.children];
}

export const STEP_MARKERS = { done: '✓', failed: '✗', running: '…', pending: '○', skipped: '–' };

/**
 * The parts both views share: host state, header and the one overall progressbar.
 * `view` is {state, label, count, percent, valuetext, error, stateText}; `t` formats the percent.
 */
export function renderHead(host, els, view, t) {
  const { state, label, count, percent, valuetext, error, stateText } = view;
  if (host.isConnected) setOrRemove(host, 'data-state', state);
  setText(els.label, label);
  setText(els.count, count);
  setText(els.state, state ? stateText || state : '');
  els.bar.setAttribute('aria-label', label);
  // With no number yet, leaving aria-valuenow out makes the bar "indeterminate" to assistive tech.
  setOrRemove(els.bar, 'aria-valuenow', percent === null ? '' : String(percent));
  setOrRemove(els.bar, 'aria-valuetext', valuetext);
  // A page opened on a finished (or half-done) task shows its width at once rather than growing
  // it from 0, so a screenshot or a glance right after the first frame is already right.
  if (els.fill.dataset.shown || percent === null) setWidth(els.fill, percent);
  else {
    jumpWidth(els.fill, percent);
    els.fill.dataset.shown = '1';
  }
  setText(els.percent, percent === null ? '' : t.percent(percent));
  setText(els.error, error);
}
