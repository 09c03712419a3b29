// <djenga-task-progress>: the entry module. It defines the element (once) and re-exports the
// class and the pure helpers. Reference: docs/widget.md; the parts live in ./progress/:
//   constants.js   states, close codes and frame types shared with the server
//   i18n.js        the page's catalog ({% djenga_i18n %}), plurals and Intl formats
//   snapshot.js    pure helpers: what a snapshot shows, as data and text
//   connection.js  WebSocket with resume and backoff, JSON polling fallback
//   dom.js         the shadow DOM template and its builders
//   task-view.js   single-task mode; group-view.js: group mode
//   step-tree.js   nested steps: the indented, collapsible tree of sub-steps
//   workflow-view.js  workflow mode (chains, chords); countdown.js: retry countdowns
//   element.js     the DjengaTaskProgress class that wires them together

import { DjengaTaskProgress } from './progress/element.js';
// Not needed for their exports: named here so the browser fetches every module in one round
// trip after this one, instead of finding the last ones only in element.js.
import './progress/connection.js';
import './progress/dom.js';
import './progress/group-view.js';
import './progress/step-tree.js';
import './progress/task-view.js';
import './progress/countdown.js';
import './progress/workflow-view.js';

export { DjengaTaskProgress };
export { CLOSE, FINAL_STATES, STEP_STATES, TASK_STATES } from './progress/constants.js';
export { compilePlural, pageTranslator, Translator } from './progress/i18n.js';
export {
  buildUrl, etaSeconds, formatElapsed, formatEta, isFinalState, isNewer, shownPercent, stepElapsedMs, stepProgress,
  summarize, summarizeGroup, summarizeMember, taskElapsedMs,
} from './progress/snapshot.js';
export { attemptText, formatRetry, retrySecondsLeft, retryText } from './progress/countdown.js';
export { stageName, summarizeWorkflow } from './progress/workflow-view.js';

if (!customElements.get('djenga-task-progress')) {
  customElements.define('djenga-task-progress', DjengaTaskProgress);
}
