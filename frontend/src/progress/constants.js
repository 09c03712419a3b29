// The names the server and the widget share: task and step states, close codes. Python checks
// this file against djenga.wire and djenga.live.consumers (djenga_tests/tests/test_widget_constants.py).

/** Task states (djenga.wire.TaskState). */
export const TASK_STATES = Object.freeze([
  'PENDING', 'STARTED', 'PROGRESS', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED', 'LOST', 'EXPIRED',
]);

/** The states a task never leaves (djenga.wire.FINAL_STATES). */
export const FINAL_STATES = Object.freeze(['SUCCESS', 'FAILURE', 'REVOKED', 'LOST', 'EXPIRED']);

/** Step states (djenga.wire.StepState). */
export const STEP_STATES = Object.freeze(['pending', 'running', 'done', 'failed', 'skipped']);

/** WebSocket close codes (djenga.live.consumers.CLOSE_*; docs/protocol.md). */
export const CLOSE = Object.freeze({
  DONE: 1000,
  UNAVAILABLE: 1011,
  BAD_FRAME: 4400,
  FORBIDDEN: 4403,
  TOO_LARGE: 4413,
  TOO_MANY: 4429,
  OVERLOADED: 4503,
});

/** The newest wire format this widget reads (djenga.wire.WIRE_VERSION): v2 adds step `children`. */
export const WIRE_VERSION = 2;

/** Frame types (the `type` of a wire-format frame). */
export const FRAME = Object.freeze({
  SNAPSHOT: 'snapshot', GROUP: 'group', RECOVERY: 'recovery', TASKS: 'tasks', ACTION: 'action',
  WORKFLOW: 'workflow',
});

const FINAL = new Set(FINAL_STATES);

/** True for a state the task will not leave. */
export const isFinalState = (state) => FINAL.has(state);
