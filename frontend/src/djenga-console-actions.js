// The console task page's action buttons (Cancel, Revoke, Terminate, Retry): each form POSTs
// to djenga/tasks/<id>/actions/<action>/ with its CSRF token; Terminate asks first. The
// answer (an `action` frame, docs/protocol.md) is said in the status line, and a retry links
// to the task it sent. The timeline shows the action itself (who, when) as it is recorded:
// a `djenga:action-recorded` event on the document tells it to fetch the row.

import { pageTranslator } from './progress/i18n.js';

const t = pageTranslator();
const box = document.querySelector('.djenga-actions');
const result = box?.querySelector('.djenga-action-result');

const gettext_noop = (msgid) => msgid;
const OUTCOMES = {
  requested: gettext_noop('Cancel requested: the task stops at its next step.'),
  queued: gettext_noop('The task had not started: it will never start.'),
  final: gettext_noop('The task had already ended: nothing was done.'),
  sent: gettext_noop('Sent to the workers.'),
};

function say(message, link) {
  result.replaceChildren(document.createTextNode(message));
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.textContent = link.text;
    a.dataset.testid = 'new-task';
    result.append(' ', a);
  }
}

async function submit(form, button) {
  const confirmText = form.dataset.confirm;
  if (confirmText && !window.confirm(confirmText)) return;
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: 'POST', body: new FormData(form), credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    const answer = await response.json().catch(() => ({}));
    // The action is in the task's log now, even on a task that has ended and so sends
    // the page no more updates: the timeline fetches its row.
    if (answer.ok) document.dispatchEvent(new CustomEvent('djenga:action-recorded'));
    if (answer.ok && answer.new_task_id) {
      const href = box.dataset.taskUrl.replace('TASK-ID', encodeURIComponent(answer.new_task_id));
      say(t.gettext('Sent again as a new task:'), { href, text: answer.new_task_id });
    } else if (answer.ok) {
      say(t.gettext(OUTCOMES[answer.outcome] || OUTCOMES.sent));
    } else {
      say(t.gettext('Refused: %(reason)s', { reason: answer.error || response.status }));
      button.disabled = false;
    }
  } catch {
    say(t.gettext('The server could not be reached.'));
    button.disabled = false;
  }
}

box?.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target;
  submit(form, form.querySelector('button'));
});
