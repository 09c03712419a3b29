// Unit tests of progress/step-tree.js: the nested-step tree on a plain list (no element).

import { childrenOf, renderStepTree, tickStepTree } from '../../src/progress/step-tree.js';
import { equal, test } from './harness.js';

// Rows shaped like the task view's: marker, description, elapsed, bar, count, message.
const makeItem = () => {
  const li = document.createElement('li');
  li.className = 'djenga-step';
  for (let i = 0; i < 6; i += 1) li.append(document.createElement('span'));
  li.children[1].className = 'djenga-step-description';
  return li;
};
const updateItem = (li, step) => { li.children[1].textContent = step.description; li.dataset.state = step.state; };

const step = (key, description, children = [], state = 'pending') => ({ key, description, state, children });
const tree = () => [
  step(1, 'Export', [step(1.1, 'Query', [], 'done'), step(1.2, '<b>Write</b>', [step('zip', 'Zip')], 'running')],
    'running'),
  step(2, 'Mail'),
];

test('a v1 step, or a leaf, has no children', () => {
  equal([childrenOf({ key: 1 }), childrenOf(step(1, 'a')), childrenOf(null)], [[], [], []]);
  equal(childrenOf({ children: [null, 3, step(2, 'b')] }).length, 1, 'non-objects are left out');
});

test('children render as nested, named lists with levels and disclosure buttons', () => {
  const list = document.createElement('ol');
  renderStepTree(list, tree(), null, makeItem, updateItem);
  const rows = [...list.querySelectorAll('li')];
  equal(rows.map((li) => li.getAttribute('aria-level')), ['1', '2', '2', '3', '1']);
  const [exportRow, , writeRow, zipRow, mailRow] = rows;
  const toggle = exportRow.children[1];
  equal([toggle.tagName, toggle.type, toggle.getAttribute('aria-expanded')], ['BUTTON', 'button', 'true']);
  equal(toggle.getAttribute('part'), 'step-description step-toggle');
  const sub = exportRow.lastElementChild;
  equal([sub.id === toggle.getAttribute('aria-controls'), sub.getAttribute('part'), sub.getAttribute('aria-label')],
    [true, 'substeps', 'Export']);
  equal(writeRow.children[1].textContent, '<b>Write</b>', 'text, never HTML');
  equal(list.querySelectorAll('b').length, 0);
  equal([zipRow.children[1].tagName, mailRow.children[1].tagName], ['SPAN', 'SPAN'], 'leaves keep a plain description');
});

test('collapsing hides the sub-list and survives re-rendering; rows are reused', () => {
  const list = document.createElement('ol');
  renderStepTree(list, tree(), null, makeItem, updateItem);
  const exportRow = list.firstElementChild;
  const zipRow = list.querySelector('li li li');
  exportRow.children[1].click();
  equal([exportRow.children[1].getAttribute('aria-expanded'), exportRow.lastElementChild.hidden], ['false', true]);
  equal('collapsed' in exportRow.dataset, true);
  const next = tree();
  next[0].children[1].children[0].state = 'done';
  renderStepTree(list, next, null, makeItem, updateItem);
  equal([list.firstElementChild === exportRow, list.querySelector('li li li') === zipRow], [true, true]);
  equal([exportRow.lastElementChild.hidden, zipRow.dataset.state], [true, 'done']);
  exportRow.children[1].click();
  equal([exportRow.children[1].getAttribute('aria-expanded'), exportRow.lastElementChild.hidden], ['true', false]);
});

test('fewer children remove rows; clocks tick all the way down', () => {
  const list = document.createElement('ol');
  renderStepTree(list, tree(), null, makeItem, updateItem);
  const fewer = tree();
  fewer[0].children.pop();
  renderStepTree(list, fewer, null, makeItem, updateItem);
  equal(list.querySelectorAll('li').length, 3);
  tickStepTree(list, fewer, (s) => `t${s.key}`);
  equal([...list.querySelectorAll('li')].map((li) => li.children[2].textContent), ['t1', 't1.1', 't2']);
});
