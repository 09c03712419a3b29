// Unit tests of the retry countdown (countdown.js) and the workflow summaries (workflow-view.js).

import {
  attemptText, formatRetry, retryAnnouncement, retryNow, retrySecondsLeft, retryText,
} from '../../src/progress/countdown.js';
import { Translator } from '../../src/progress/i18n.js';
import { stageName, summarizeWorkflow } from '../../src/progress/workflow-view.js';
import { equal, test } from './harness.js';

const FR = new Translator({
  locale: 'fr',
  plural: '(n > 1)',
  catalog: {
    'Retrying in %(n)s second': ['Nouvel essai dans %(n)s seconde', 'Nouvel essai dans %(n)s secondes'],
    'Stage %(index)s of %(count)s': 'Phase %(index)s sur %(count)s',
  },
});
const retrying = { state: 'RETRY', attempt: 1, updated_at: 1000, retry_at: 1012, retry_in: 12 };

test('the countdown runs from retry_in to 0 on the server clock', () => {
  equal(retrySecondsLeft(retrying, 1000_000), 12);
  equal(retrySecondsLeft(retrying, 1004_500), 7.5);
  equal(retrySecondsLeft(retrying, 1020_000), 0, 'never below 0');
  // A clock far behind the worker's never shows more than the delay the worker computed.
  equal(retrySecondsLeft(retrying, 900_000), 12, 'never above retry_in');
  equal(retrySecondsLeft({ ...retrying, state: 'STARTED' }, 1000_000), null, 'only while RETRY');
  equal(retrySecondsLeft({ state: 'RETRY' }, 1000_000), null, 'no retry_at: no countdown');
});

test('the countdown reads in words, rounded up, with plural forms', () => {
  equal(formatRetry(12), 'Retrying in 12 seconds');
  equal(formatRetry(0.2), 'Retrying in 1 second');
  equal(formatRetry(0), 'Retrying now…');
  equal(formatRetry(600), 'Retrying in 10 minutes');
  equal(formatRetry(null), '');
  equal(formatRetry(1, FR), 'Nouvel essai dans 1 seconde');
  equal(formatRetry(2, FR), 'Nouvel essai dans 2 secondes');
  equal(retryText(retrying, 1004_500), 'Retrying in 8 seconds');
});

test('the attempt number shows from the second attempt on', () => {
  equal(attemptText({ attempt: 1 }), '');
  equal(attemptText({ attempt: 2 }), 'Attempt 2');
  equal(retryAnnouncement(retrying), 'Attempt 1 failed: Retrying in 12 seconds');
  equal(retryAnnouncement({ state: 'RETRY', attempt: 2 }), 'Attempt 2 failed, retrying');
  equal(retryAnnouncement({ state: 'PROGRESS' }), '');
});

const chord = {
  type: 'workflow', state: 'PROGRESS', percent: 80, current: 1,
  stages: [
    { index: 0, state: 'SUCCESS', percent: 100, tasks: [1, 2, 3, 4].map((i) => ({ name: 'gru.stage', state: 'SUCCESS', task_id: `h${i}` })) },
    { index: 1, state: 'PENDING', percent: 0, tasks: [{ name: 'gru.body', state: 'PENDING', task_id: 'b' }] },
  ],
};

test('a workflow reads stage by stage', () => {
  equal(stageName(chord.stages[0], 0), 'Stage 1: 4 tasks');
  equal(stageName(chord.stages[1], 1), 'Stage 2: gru.body');
  const view = summarizeWorkflow(chord);
  equal([view.state, view.percent, view.countText], ['PROGRESS', 80, 'Stage 2 of 2']);
  equal(view.valuetext, 'Stage 2 of 2: Stage 2: gru.body');
  equal(summarizeWorkflow(chord, FR).countText, 'Phase 2 sur 2');
  const done = summarizeWorkflow({ ...chord, state: 'SUCCESS', percent: 100, current: null });
  equal([done.countText, done.valuetext, done.error], ['2 stages done', 'Done', '']);
  const failed = summarizeWorkflow({ ...chord, state: 'FAILURE', current: 0 });
  equal(failed.error, 'Stage 1 failed.');
  equal(summarizeWorkflow(null).stages, []);
  equal(summarizeWorkflow({ stages: 'nonsense' }).stages, [], 'bad input shows nothing, never throws');
});

test('countdowns run on the later of the browser clock and the server estimate', () => {
  const before = Date.now();
  const ahead = retryNow(5000); // the server is 5 s ahead of this browser
  const behind = retryNow(-60_000); // a stale snapshot: the estimate is a minute behind
  const after = Date.now();
  equal(ahead >= before + 5000 && ahead <= after + 5000, true, 'server ahead: its estimate');
  equal(behind >= before && behind <= after, true, 'estimate behind: the browser clock');
  equal(retryNow(null) >= before, true);
});
