// Unit tests of the Cancel button (progress/cancel.js) on a bare host element: when it shows,
// what it sends, "Cancelling…", and a refusal bringing it back.

import { CancelControl } from '../../src/progress/cancel.js';
import { Translator } from '../../src/progress/i18n.js';
import { equal, test } from './harness.js';

const EN = new Translator({ locale: 'en', catalog: {} });
const FR = new Translator({ locale: 'fr', plural: '(n > 1)', catalog: { 'Cancelling…': 'Annulation…' } });
const RUNNING = { state: 'PROGRESS', seq: 3, steps: [] };

function setUp({ allowed = true, socket = true } = {}) {
  const host = document.createElement('div');
  if (allowed) host.setAttribute('cancel', '');
  const root = document.createElement('div');
  const sent = [];
  const control = new CancelControl(host, root, (message) => { sent.push(message); return socket; });
  host.snapshot = RUNNING;
  const button = root.querySelector('[part=cancel-button]');
  const status = root.querySelector('[part=cancel-status]');
  const box = root.querySelector('[part=cancel]');
  return { host, control, sent, button, status, box };
}

test('no cancel attribute, no button', () => {
  const { control, box } = setUp({ allowed: false });
  control.render(RUNNING, EN);
  equal(box.hidden, true);
});

test('a running task with the attribute shows a named button', () => {
  const { control, box, button, status } = setUp();
  control.render(RUNNING, EN);
  equal([box.hidden, button.hidden, button.textContent, button.getAttribute('aria-label'), status.textContent],
    [false, false, 'Cancel', 'Cancel this task', '']);
  equal(button.type, 'button');
});

test('pressing it sends the action frame and says Cancelling…', () => {
  const { control, sent, button, status } = setUp();
  control.render(RUNNING, EN);
  button.click();
  equal(sent, [{ type: 'action', action: 'cancel' }]);
  equal([button.hidden, status.textContent], [true, 'Cancelling…']);
  button.click(); // asked once only
  equal(sent.length, 1);
});

test('a cancel requested by someone else shows Cancelling… too, translated', () => {
  const { control, button, status } = setUp();
  control.render({ ...RUNNING, cancel: { at: 1 } }, FR);
  equal([button.hidden, status.textContent], [true, 'Annulation…']);
});

test('a final task shows no box', () => {
  const { control, box } = setUp();
  control.render({ state: 'REVOKED', cancel: { at: 1 } }, EN);
  equal(box.hidden, true);
});

test('a refusal brings the button back with a message', () => {
  const { control, button, status } = setUp();
  control.render(RUNNING, EN);
  button.click();
  control.answer({ type: 'action', action: 'cancel', ok: false, error: 'unavailable' });
  equal([button.hidden, status.textContent], [false, 'The task could not be cancelled.']);
});
