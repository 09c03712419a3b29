// The console's task page: appends new timeline rows as the task's widget reports updates,
// and reloads once when the task ends so the result or traceback shows.

import { pageTranslator } from './progress/i18n.js';

const t = pageTranslator();
const table = document.querySelector('table.djenga-timeline');
const widget = document.querySelector('djenga-task-progress');
let lastSeq = Number(table?.dataset.lastSeq || 0);
let fetching = false;

function cell(row, value) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? '' : String(value);
  return td;
}

async function appendNewRows() {
  if (fetching || !table) return;
  fetching = true;
  try {
    const response = await fetch(`${table.dataset.eventsUrl}?after=${lastSeq}`, {
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
      cell(tr, row.text);
      cell(tr, row.duration === null ? '' : t.unit(row.duration, 'second', 3));
      lastSeq = Math.max(lastSeq, row.seq);
    }
  } finally {
    fetching = false;
  }
}

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
