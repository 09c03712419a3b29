// Nested steps (wire v2 `children`): each step with children gets a sub-list, indented under
// its row, and its description becomes a disclosure button (aria-expanded, aria-controls) that
// shows or hides it. Rows are the task view's own (makeItem/updateItem); text only, never HTML.

import { el, setAttr, setText, sized } from './dom.js';
import { isObject } from './snapshot.js';

/** A step's children (wire v2); [] for a leaf or a v1 step. */
export const childrenOf = (step) => (Array.isArray(step?.children) ? step.children.filter(isObject) : []);

// Class names, parts and custom properties: docs/widget.md, "Nested steps".
const CSS = `
  .djenga-substeps { grid-column: 1 / -1; margin: 2px 0 0; padding-inline-start: var(--djenga-substep-indent, 1.25em);
    border-inline-start: var(--djenga-substep-rule, 1px solid var(--_border)); }
  .djenga-substeps .djenga-step { font-size: var(--djenga-substep-font-size, 0.95em); }
  /* A row's description follows its own state, not its parent's. */
  .djenga-substeps > .djenga-step > .djenga-step-description { font-weight: normal; color: var(--_text); }
  .djenga-substeps > .djenga-step[data-state="running"] > .djenga-step-description { font-weight: 600; }
  .djenga-substeps > .djenga-step[data-state="failed"] > .djenga-step-description { color: var(--_failed); }
  .djenga-substeps > .djenga-step:is([data-state="pending"], [data-state="skipped"]) > .djenga-step-description {
    color: var(--_muted); }
  .djenga-step-toggle { font: inherit; color: inherit; background: none; border: 0; padding: 0; margin: 0;
    text-align: start; cursor: pointer; }
  .djenga-step-toggle:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; border-radius: 2px; }
  .djenga-step-toggle::before { content: "▾\\2002" / ""; color: var(--_muted); }
  .djenga-step-toggle[aria-expanded="false"]::before { content: "▸\\2002" / ""; }
  .djenga-root[dir="rtl"] .djenga-step-toggle[aria-expanded="false"]::before { content: "◂\\2002" / ""; }
`;

let lastId = 0;

/** Put the tree's styles in the widget's shadow root once. */
function ensureStyles(list) {
  const root = list.getRootNode();
  if (!(root instanceof ShadowRoot) || root.querySelector('style[data-djenga-step-tree]')) return;
  const style = document.createElement('style');
  style.dataset.djengaStepTree = '';
  style.textContent = CSS;
  root.append(style);
}

/** Turn row `li` into a parent row: its description is a disclosure button for sub-list `sub`. */
function makeParent(li) {
  const sub = el('ol', 'djenga-steps djenga-substeps', 'substeps');
  sub.id = `djenga-substeps-${++lastId}`;
  const old = li.children[1];
  const toggle = el('button', `${old.className} djenga-step-toggle`, 'step-description step-toggle');
  toggle.type = 'button';
  toggle.textContent = old.textContent;
  toggle.setAttribute('aria-expanded', 'true');
  toggle.setAttribute('aria-controls', sub.id);
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    sub.hidden = !open;
    if (open) delete li.dataset.collapsed;
    else li.dataset.collapsed = '';
  });
  old.replaceWith(toggle);
  li.append(sub);
  return sub;
}

/** The sub-list of row `li`, or null for a leaf row. */
const subListOf = (li) => (li.lastElementChild?.classList.contains('djenga-substeps') ? li.lastElementChild : null);

/**
 * Render `steps` (and, recursively, their children) into `list`, reusing its rows: a row is
 * made with `makeItem()` and brought up to date with `updateItem(li, step, index, t)`.
 */
export function renderStepTree(list, steps, t, makeItem, updateItem, level = 1) {
  if (level === 1 && steps.some((step) => childrenOf(step).length)) ensureStyles(list);
  sized(list, steps.length, makeItem).forEach((li, index) => {
    const step = steps[index];
    const kids = childrenOf(step);
    const sub = subListOf(li) || (kids.length ? makeParent(li) : null);
    updateItem(li, step, index, t);
    setAttr(li, 'aria-level', String(level));
    if (sub) {
      // The sub-list is named after its step: "Export the orders, list, 2 items".
      setAttr(sub, 'aria-label', li.children[1].textContent);
      renderStepTree(sub, kids, t, makeItem, updateItem, level + 1);
    }
  });
}

/** Set each row's elapsed text (its third child) to `elapsed(step)`, all the way down. */
export function tickStepTree(list, steps, elapsed) {
  steps.forEach((step, index) => {
    const li = list.children[index];
    if (!li) return;
    setText(li.children[2], elapsed(step));
    const sub = subListOf(li);
    if (sub) tickStepTree(sub, childrenOf(step), elapsed);
  });
}
