// The console's task page: appends new timeline rows as the task's widget reports updates
// or an action is recorded (djenga-console-actions.js), and reloads once when the task
// ends so the result or traceback shows.

import { pageTranslator } from './progress/i18n.js';

const t = pageTranslator();
const table = document.querySelector('table.djenga-timeline');
const widget = document.querySelector('djenga-task-progress');
let lastSeq = Number(table?.dataset.lastSeq || 0);
let shown = Number(table?.dataset.lastSeqRows || 0);  // rows on the page with seq lastSeq
let fetching = false;

// A link to another task's console page: the task a retry sent, or the one it sent again.
function taskLink(td, taskId, testid) {
  const a = document.createElement('a');
  a.href = table.dataset.taskUrl.replace('TASK-ID', encodeURIComponent(taskId));
  a.textContent = t.gettext('open');
  a.dataset.testid = testid;
  td.append(' ', a);
}

function cell(row, value) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? '' : String(value);
  return td;
}

async function appendNewRows() {
  if (fetching || !table) return;
  fetching = true;
  try {
    const response = await fetch(`${table.dataset.eventsUrl}?after=${lastSeq}&shown=${shown}`, {
      credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store',
    });
    if (!response.ok) return;
    const { rows } = await response.json();
    const body = table.tBodies[0];
    body.querySelector('.djenga-empty')?.remove();
    for (const row of rows) {
      const tr = body.insertRow();
      tr.className = `djenga-${row.kind}`;
      cell(tr, row.seq);
      cell(tr, row.clock);
      cell(tr, row.offset == null ? '' : t.number(row.offset, { minimumFractionDigits: 3, maximumFractionDigits: 3 }));
      cell(tr, row.attempt);
      cell(tr, row.label);
      const step = cell(tr, row.step);
      step.className = 'djenga-step';
      step.dataset.depth = row.depth || 0;  // a sub-step is indented (base.html)
      const text = cell(tr, row.text);
      if (row.new_task_id) taskLink(text, row.new_task_id, 'retried-as');
      if (row.retry_of) taskLink(text, row.retry_of, 'retry-of-row');
      cell(tr, row.duration === null ? '' : t.unit(row.duration, 'second', 3));
      if (row.seq > lastSeq) [lastSeq, shown] = [row.seq, 0];
      shown += 1;
    }
  } finally {
    fetching = false;
  }
}

if (table) document.addEventListener('djenga:action-recorded', () => appendNewRows());

if (widget && table) {
  const startedFinal = ['SUCCESS', 'FAILURE', 'REVOKED', 'LOST'].includes(
    document.querySelector('[data-testid="state"]')?.textContent.trim());
  widget.addEventListener('djenga:update', (event) => {
    if ((event.detail?.seq || 0) > lastSeq) appendNewRows();
  });
  widget.addEventListener('djenga:done', () => {
    if (!startedFinal) setTimeout(() => location.reload(), 300);
  });
}
