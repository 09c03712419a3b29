// Retry countdowns: how long until a RETRY snapshot's next attempt, in words, ticking each
// second. Pure: no DOM; every function takes a Translator (default English).
//
// Clock skew: `retry_at` is on the worker's clock. The element keeps `offset`, the server's
// clock minus the browser's, as the largest `updated_at - Date.now()` it has seen: a lower
// bound, exact but for latency while snapshots are fresh, far too low for a snapshot read
// long after it was written (a page opened while the retry waits). So the countdown runs on
// `retryNow(offset)`, the later of the browser's clock and that estimate: never more than
// `retry_in` (the delay the worker computed), never past 0; a browser clock that is ahead
// of the worker's only makes "Retrying now…" come early.

import { ENGLISH } from './i18n.js';
import { num } from './snapshot.js';

/**
 * Seconds until the next attempt of `snap` at `nowMs` (server clock, as the element ticks it),
 * never below 0 nor above `retry_in`; null unless `snap` is a RETRY snapshot with a `retry_at`.
 */
export function retrySecondsLeft(snap, nowMs) {
  const retryAt = num(snap?.retry_at);
  if (snap?.state !== 'RETRY' || retryAt === null) return null;
  let left = retryAt - nowMs / 1000;
  const retryIn = num(snap.retry_in);
  if (retryIn !== null) left = Math.min(left, retryIn);
  return Math.max(0, left);
}

/** The clock retry countdowns run on (ms): the browser's, or the server's estimate if later. */
export const retryNow = (offset) => Date.now() + Math.max(0, offset ?? 0);

/** "Retrying in 12 seconds", "Retrying in 3 minutes", "Retrying now…"; '' for no countdown. */
export function formatRetry(seconds, t = ENGLISH) {
  if (num(seconds) === null) return '';
  const whole = Math.ceil(seconds - 1e-6); // round up: the attempt is not due before it says
  if (whole <= 0) return t.gettext('Retrying now…');
  if (whole < 120) return t.ngettext('Retrying in %(n)s second', 'Retrying in %(n)s seconds', whole);
  return t.ngettext('Retrying in %(n)s minute', 'Retrying in %(n)s minutes', Math.round(whole / 60));
}

/** The countdown text of `snap` at `nowMs` (server clock), or ''. */
export const retryText = (snap, nowMs, t = ENGLISH) => formatRetry(retrySecondsLeft(snap, nowMs), t);

/** "Attempt 2" once a task is on a later attempt than its first, else ''. */
export function attemptText(snap, t = ENGLISH) {
  const attempt = num(snap?.attempt);
  return attempt !== null && attempt > 1 ? t.gettext('Attempt %(n)s', { n: t.number(attempt) }) : '';
}

/** What the live region says when a task starts waiting for its retry: "Attempt 1 failed: Retrying in 12 seconds". */
export function retryAnnouncement(snap, t = ENGLISH) {
  if (snap?.state !== 'RETRY') return '';
  const n = t.number(num(snap.attempt) ?? 1);
  const retryIn = num(snap.retry_in);
  if (retryIn === null) return t.gettext('Attempt %(n)s failed, retrying', { n });
  return t.gettext('Attempt %(n)s failed: %(retry)s', { n, retry: formatRetry(retryIn, t) });
}
