// Unit tests of the pure modules: constants, i18n and snapshot (no DOM, no connection).

import { CLOSE, FINAL_STATES, isFinalState, TASK_STATES } from '../../src/progress/constants.js';
import { compilePlural, interpolate, pageTranslator, Translator } from '../../src/progress/i18n.js';
import {
  buildUrl, etaSeconds, formatElapsed, formatEta, isNewer, membersEnded, runningPath, shownPercent, stepElapsedMs,
  stepProgress, summarize, summarizeGroup, summarizeMember, taskElapsedMs,
} from '../../src/progress/snapshot.js';
import { equal, test } from './harness.js';

const AR_PLURAL = 'n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5';
const FR = new Translator({
  locale: 'fr',
  plural: '(n > 1)',
  catalog: {
    'Step %(index)s of %(count)s: %(description)s': 'Étape %(index)s sur %(count)s : %(description)s',
    'about %(time)s left': 'encore environ %(time)s',
    '%(done)s of %(total)s task done': ['%(done)s tâche sur %(total)s terminée', '%(done)s tâches sur %(total)s terminées'],
    Done: 'Terminé',
  },
});

test('the final states are a subset of the task states', () => {
  equal(FINAL_STATES.every((s) => TASK_STATES.includes(s)), true);
  equal(['SUCCESS', 'PROGRESS', 'LOST', 'nope'].map(isFinalState), [true, false, true, false]);
  equal([CLOSE.FORBIDDEN, CLOSE.BAD_FRAME, CLOSE.OVERLOADED], [4403, 4400, 4503]);
});

test('plural expressions of gettext compile without eval', () => {
  const ns = [0, 1, 2, 3, 10, 11, 99, 100, 101, 102, 103, 111];
  equal(ns.map(compilePlural('(n != 1)')), [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 'de');
  equal(ns.map(compilePlural('(n > 1)')), [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 'fr');
  equal(ns.map(compilePlural('0')), ns.map(() => 0), 'ja');
  equal(ns.map(compilePlural(AR_PLURAL)), [0, 1, 2, 3, 3, 4, 4, 5, 5, 5, 3, 4], 'ar');
  // Russian: two levels of nested ternaries and parentheses.
  const ru = compilePlural('(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)');
  equal([1, 2, 5, 11, 21, 22, 25].map(ru), [0, 1, 2, 2, 0, 1, 2], 'ru');
  let threw = false;
  try { compilePlural('n; alert(1)'); } catch { threw = true; }
  equal(threw, true, 'anything but the grammar is refused');
});

test('interpolate fills named placeholders only', () => {
  equal(interpolate('%(a)s and %(b)s, not %(c)s', { a: 1, b: '<b>' }), '1 and <b>, not %(c)s');
});

test('a translator uses its catalog, its plural forms and English otherwise', () => {
  const ar = new Translator({ locale: 'ar', plural: AR_PLURAL, catalog: { '%(n)s step': ['0', '1', '2', 'few', 'many', 'other'] } });
  equal([0, 1, 2, 3, 11, 100].map((n) => ar.ngettext('%(n)s step', '%(n)s steps', n)), ['0', '1', '2', 'few', 'many', 'other']);
  const en = new Translator();
  equal([1, 3].map((n) => en.ngettext('%(n)s step', '%(n)s steps', n)), ['1 step', '3 steps']);
  equal(FR.gettext('Done'), 'Terminé');
  equal(FR.gettext('Not in the catalog'), 'Not in the catalog');
});

test('a broken plural expression falls back to English plurals', () => {
  const t = new Translator({ plural: 'n ==', catalog: {} });
  equal(t.ngettext('%(n)s step', '%(n)s steps', 2), '2 steps');
});

test('formatElapsed writes durations with Intl in the translator\'s language', () => {
  equal([400, 9999, 12000, 185000, 7620000].map((ms) => formatElapsed(ms)),
    ['0.4 sec', '9.9 sec', '12 sec', '3 min, 5 sec', '2 hr, 7 min']);
  equal(formatElapsed(400, FR), '0,4\u202fs', 'French: a narrow no-break space');
  equal([null, NaN, 'x'].map((v) => formatElapsed(v)), ['', '', '']);
  equal(formatElapsed(-5), '0.0 sec', 'never negative');
});

test('formatEta rounds up and says almost done at 0', () => {
  equal([0, 0.2, 8, 200, null].map((s) => formatEta(s)), ['almost done', 'about 1 sec left', 'about 8 sec left',
    'about 3 min left', '']);
  equal(formatEta(8, FR), 'encore environ 8\u202fs');
});

test('clocks: elapsed, capped once final, and the eta counted down', () => {
  const step = { state: 'running', started_at: 100 };
  equal(stepElapsedMs(step, 103000), 3000);
  equal(stepElapsedMs(step, 103000, 101000), 1000, 'capped');
  equal(stepElapsedMs({ state: 'done', started_at: 100, ended_at: 104, duration: 3.5 }, 0), 3500);
  equal(stepElapsedMs({ state: 'pending' }, 0), null);
  equal(taskElapsedMs({ started_at: 10, ended_at: 12 }, 99999), 2000);
  equal(etaSeconds({ state: 'PROGRESS', eta: 10, updated_at: 100 }, 104000), 6);
  equal(etaSeconds({ state: 'PROGRESS', eta: 10, updated_at: 100 }, 200000), 0);
  equal(etaSeconds({ state: 'SUCCESS', eta: 10 }, 0), null);
});

test('stepProgress reports "3 of 10" only for a step with a total', () => {
  equal(stepProgress({ total: 10, done: 3 }), { percent: 30, text: '3 of 10' });
  equal(stepProgress({ total: 2000, done: 2000 }).text, '2000 of 2000');
  equal(stepProgress({ total: 3, done: 5 }).percent, 100);
  equal(stepProgress({ done: 3 }), null);
});

test('buildUrl substitutes the task id, adds params and switches to ws', () => {
  equal(buildUrl('/ws/djenga/tasks/{task-id}/', 'a b', { token: 't', seq: 3, epoch: null }, {
    base: 'https://example.com/x', websocket: true,
  }), 'wss://example.com/ws/djenga/tasks/a%20b/?token=t&seq=3');
  equal(buildUrl('/djenga/tasks/{task-id}/', 'id', {}, { base: 'http://h/' }), 'http://h/djenga/tasks/id/');
});

test('isNewer: a new epoch always wins, within one the seq must grow', () => {
  equal(isNewer(null, { seq: 1 }), true);
  equal(isNewer({ seq: 3, epoch: 'a' }, { seq: 2, epoch: 'b' }), true);
  equal(isNewer({ seq: 3, epoch: 'a' }, { seq: 3, epoch: 'a' }), false);
  equal(isNewer({ seq: 3, epoch: 'a' }, { seq: 4, epoch: 'a' }), true);
});

test('shownPercent shows the server\'s percent: floored, 100 only on success', () => {
  equal([{ state: 'PROGRESS' }, { state: 'PROGRESS', percent: 100 }, { state: 'PROGRESS', percent: 37.5 },
    { state: 'SUCCESS', percent: 12 }, { state: 'FAILURE', percent: -3 }].map(shownPercent), [null, 99, 37, 100, 0]);
});

test('summarize: the current step, the valuetext and the announcement', () => {
  const snap = {
    state: 'PROGRESS', current: 2, percent: 40,
    steps: [{ key: 1, state: 'done', description: 'Fly' }, { key: 2, state: 'running', description: 'Shrink' }],
  };
  const s = summarize(snap);
  equal([s.percent, s.current.key, s.valuetext, s.announcement], [40, 2, 'Step 2 of 2: Shrink', 'Step 2 of 2: Shrink']);
  equal(summarize(snap, FR).valuetext, 'Étape 2 sur 2 : Shrink');
  const done = summarize({ ...snap, state: 'SUCCESS' });
  equal([done.percent, done.valuetext, done.announcement], [100, 'Done', 'Task done']);
  equal(summarize({ ...snap, state: 'SUCCESS' }, FR).valuetext, 'Terminé');
  equal(summarize(undefined).valuetext, '');
});

test('runningPath and summarize name a running sub-step after its parents (wire v2)', () => {
  const write = { key: 1.2, state: 'running', description: 'Write', children: [] };
  const snap = {
    v: 2, state: 'PROGRESS', current: 1.2, current_path: [1, 1.2], percent: 25,
    steps: [{ key: 1, state: 'running', description: 'Export', children: [{ key: 1.1, state: 'done' }, write] },
      { key: 2, state: 'pending', description: 'Mail', children: [] }],
  };
  equal(runningPath(snap).map((s) => s.key), [1, 1.2]);
  equal(summarize(snap).valuetext, 'Step 1 of 2: Export › Write', 'the top-level index, the whole path');
  equal(summarize(snap).current.key, 1, 'current stays the top-level step');
  equal(runningPath({ ...snap, current_path: [1, 'gone'] }).map((s) => s.key), [1], 'a stale path stops where it breaks');
  const v1 = { state: 'PROGRESS', current: 2, steps: [{ key: 1, state: 'done' }, { key: 2, state: 'running', description: 'B' }] };
  equal([runningPath(v1).map((s) => s.key), summarize(v1).valuetext], [[2], 'Step 2 of 2: B']);
  equal([runningPath({ state: 'PENDING', current: null, steps: [] }), runningPath(undefined)], [[], []]);
});

test('summarizeMember names nameless tasks and labels the row', () => {
  equal(summarizeMember({ state: 'PROGRESS', percent: 50 }, 2).label, 'Task 3: 50%, In progress');
  equal(summarizeMember({ state: 'weird' }, 0).state, 'PENDING');
  equal(summarizeMember({ state: 'FAILURE', name: 'x', error: { message: 'boom' } }, 0).step, 'boom');
});

test('summarizeGroup counts members with proper plurals', () => {
  const group = (states) => ({ state: 'PROGRESS', percent: 10, total: states.length, tasks: states.map((state) => ({ state })) });
  const one = summarizeGroup(group(['SUCCESS']));
  equal([one.countText, one.valuetext], ['1 of 1 done', '1 of 1 task done']);
  const mixed = summarizeGroup(group(['SUCCESS', 'FAILURE', 'REVOKED']));
  equal([mixed.countText, mixed.valuetext], ['1 of 3 done, 1 failed, 1 cancelled', '1 of 3 tasks done, 1 failed, 1 cancelled']);
  equal(summarizeGroup(group(['SUCCESS', 'PENDING']), FR).valuetext, '1 tâches sur 2 terminées');
  equal([1, 4].map((n) => membersEnded(n, 'SUCCESS')), ['1 task done', '4 tasks done']);
});

test('pageTranslator reads the catalog the template tag renders', () => {
  const doc = document.implementation.createHTMLDocument('');
  const script = doc.createElement('script');
  script.type = 'application/json';
  script.dataset.djengaI18n = '';
  script.textContent = JSON.stringify({ locale: 'de', dir: 'ltr', plural: '(n != 1)', catalog: { Done: 'Fertig' } });
  doc.head.append(script);
  const t = pageTranslator(doc);
  equal([t.locale, t.dir, t.gettext('Done')], ['de', 'ltr', 'Fertig']);
  equal(pageTranslator(document.implementation.createHTMLDocument('')).locale, 'en', 'no catalog: English');
});
