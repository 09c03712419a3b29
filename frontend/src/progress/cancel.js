// The Cancel button of one task's widget: shown only when the page says the token allows it
// (the `cancel` attribute, which {% djenga_task_progress task_id cancel=True %} renders; the
// server checks the token again on every action), then "Cancelling…", then the final state
// ("Cancelled", the state badge). Sends {"type": "action", "action": "cancel"} on the open
// socket, else a POST (CSRF header from Django's csrftoken cookie) to `cancel-url`.

import { FRAME, isFinalState } from './constants.js';
import { el } from './dom.js';
import { isObject } from './snapshot.js';

const STYLE = `
  .djenga-cancel { display: flex; align-items: center; gap: 8px; margin-top: 8px; }
  .djenga-cancel-button {
    font: inherit; font-size: 0.85em; padding: 2px 10px; cursor: pointer; color: var(--_failed);
    background: var(--_bg); border: 1px solid var(--_border); border-radius: var(--djenga-radius, 8px);
  }
  .djenga-cancel-button:hover { border-color: var(--_failed); }
  .djenga-cancel-button:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
  .djenga-cancel-status { font-size: 0.85em; color: var(--_muted); }
  .djenga-cancel-status:empty { display: none; }
`;

export class CancelControl {
  /** `root`: the shadow container to append to; `send(message)`: true if the socket took it. */
  constructor(host, root, send) {
    this.host = host;
    this.send = send;
    this.asked = false;
    this.error = '';
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.box = el('div', 'djenga-cancel', 'cancel');
    this.button = el('button', 'djenga-cancel-button', 'cancel-button');
    this.button.type = 'button';
    this.status = el('span', 'djenga-cancel-status', 'cancel-status');
    this.status.setAttribute('role', 'status');
    this.box.append(this.button, this.status);
    this.box.hidden = true;
    this.button.addEventListener('click', () => this.request());
    root.append(style, this.box);
  }

  /** Show what `snap` says: the button, "Cancelling…" once asked (by anyone), nothing when final. */
  render(snap, t) {
    this.t = t;
    const allowed = this.host.hasAttribute('cancel') && !this.host.hasAttribute('group-token');
    const final = isFinalState(snap?.state);
    const pending = !final && (this.asked || isObject(snap?.cancel));
    this.box.hidden = !allowed || final || !snap;
    this.button.textContent = t.gettext('Cancel');
    this.button.setAttribute('aria-label', t.gettext('Cancel this task'));
    this.button.hidden = pending;
    this.status.textContent = pending ? t.gettext('Cancelling…') : this.error;
  }

  /** Ask the server to cancel: on the socket if one is open, else a POST. */
  request() {
    if (this.asked) return;
    this.asked = true;
    this.error = '';
    this.host.dispatchEvent(new CustomEvent('djenga:cancel', { bubbles: true, composed: true }));
    if (!this.send({ type: 'action', action: 'cancel' })) this.post();
    this.render(this.host.snapshot, this.t);
  }

  /** An `action` frame answering us (over the socket, or the POST's body). */
  answer(frame) {
    if (!isObject(frame) || frame.type !== FRAME.ACTION || frame.action !== 'cancel') return;
    if (frame.ok === false) {
      this.asked = false;
      this.error = this.t.gettext('The task could not be cancelled.');
    }
    this.render(this.host.snapshot, this.t);
  }

  async post() {
    const url = this.host.getAttribute('cancel-url');
    if (!url) return this.answer({ type: FRAME.ACTION, action: 'cancel', ok: false });
    const csrf = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || '';
    const body = new URLSearchParams({ token: this.host.getAttribute('token') || '' });
    try {
      const response = await fetch(url, {
        method: 'POST', body, credentials: 'same-origin', headers: { 'X-CSRFToken': decodeURIComponent(csrf) },
      });
      const data = await response.json().catch(() => ({}));
      this.answer(response.ok ? data : { type: FRAME.ACTION, action: 'cancel', ok: false });
    } catch {
      this.answer({ type: FRAME.ACTION, action: 'cancel', ok: false });
    }
  }

  /** A new task or token: forget that we asked. */
  reset() {
    this.asked = false;
    this.error = '';
  }
}
