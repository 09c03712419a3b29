// Types of <djenga-task-progress> (djenga-widget): attributes, properties, events, JSX.
// The element itself is plain JavaScript (../src/djenga-task-progress.js); nothing here runs.

/** Task states (djenga.wire.TaskState). */
export type TaskState =
  | 'PENDING' | 'STARTED' | 'PROGRESS' | 'RETRY' | 'SUCCESS' | 'FAILURE' | 'REVOKED' | 'LOST' | 'EXPIRED';

/** Step states (djenga.wire.StepState). */
export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

/** 'connecting' | 'websocket' | 'polling' | 'closed': the element's `connection`. */
export type Connection = 'connecting' | 'websocket' | 'polling' | 'closed';

/** One step of a snapshot (docs/snapshot.md). */
export interface Step {
  key: number | string;
  description: string | null;
  state: StepState;
  message: string | null;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  done: number | null;
  total: number | null;
  expected?: number | null;
  /** Sub-steps, of this same shape (wire format v2); [] for a leaf, absent in v1. */
  children?: Step[];
}

/** A task snapshot, wire format v2 (v1 read too: docs/protocol.md, "Versions"). */
export interface TaskSnapshot {
  v: 1 | 2;
  type?: 'snapshot';
  task_id: string;
  name: string | null;
  state: TaskState;
  seq: number;
  epoch: string | null;
  updated_at: number | null;
  started_at?: number | null;
  ended_at?: number | null;
  attempt: number;
  steps: Step[];
  /** The running step's key: the deepest one when steps are nested. */
  current: number | string | null;
  /** Keys from the top-level running step down to `current` (v2). */
  current_path?: (number | string)[];
  /** 0–100, computed by the server; 100 only for SUCCESS. */
  percent: number;
  eta?: number | null;
  /** RETRY only: when the next attempt is due (epoch seconds, worker clock) and the seconds to it at updated_at. */
  retry_at?: number;
  retry_in?: number;
  error: { type: string | null; message: string | null } | null;
  public: string[];
  private: Record<string, unknown>;
}

/** A group snapshot (group mode), wire format v2. */
export interface GroupSnapshot {
  v: 1 | 2;
  type: 'group';
  state: TaskState;
  seq: number;
  epoch: string;
  percent: number;
  total: number;
  counts: Partial<Record<TaskState, number>>;
  updated_at: number | null;
  tasks: TaskSnapshot[];
}

/** One stage of a workflow snapshot: one task, or a group (a chord's header). */
export interface WorkflowStage {
  index: number;
  state: TaskState;
  percent: number;
  total: number;
  /** Full task snapshots, or fewer fields when the frame says `slim`. */
  tasks: Array<Partial<TaskSnapshot> & Pick<TaskSnapshot, 'task_id' | 'state' | 'percent'>>;
}

/** A workflow snapshot (workflow mode: a chain or a chord), wire format v1. */
export interface WorkflowSnapshot {
  v: 1;
  type: 'workflow';
  state: TaskState;
  seq: number;
  epoch: string;
  percent: number;
  total: number;
  /** Index of the first stage not yet SUCCESS; null once all are. */
  current: number | null;
  counts: Partial<Record<TaskState, number>>;
  updated_at: number | null;
  stages: WorkflowStage[];
  /** Set when a big frame left steps (1, 2) or task fields (3–5) out to fit 60,000 bytes. */
  slim?: 1 | 2 | 3 | 4 | 5;
}

export type Snapshot = TaskSnapshot | GroupSnapshot | WorkflowSnapshot;

/** `djenga:error`'s detail: 4403 forbidden, 4400 bad request, 403 from a poll. */
export interface DjengaErrorDetail {
  code: number;
  reason: string;
}

export type DjengaUpdateEvent = CustomEvent<Snapshot>;
export type DjengaDoneEvent = CustomEvent<Snapshot>;
export type DjengaErrorEvent = CustomEvent<DjengaErrorDetail>;

export interface DjengaTaskProgressEventMap extends HTMLElementEventMap {
  'djenga:update': DjengaUpdateEvent;
  'djenga:done': DjengaDoneEvent;
  'djenga:error': DjengaErrorEvent;
}

/** The element's attributes (all strings in HTML; `stay` is boolean: present or absent). */
export interface DjengaTaskProgressAttributes {
  /** The task to watch (single-task mode; wins over group-token). */
  'task-id'?: string;
  /** The signed token for task-id (djenga.live.auth.make_token). */
  token?: string;
  /** Group mode: the token of make_group_token. */
  'group-token'?: string;
  /** Workflow mode (a chain or a chord; wins over group-token): the token of make_workflow_token. */
  'workflow-token'?: string;
  /** WebSocket URL template ({task-id} is replaced). */
  'ws-url'?: string;
  /** JSON polling URL template ({task-id} is replaced). */
  'poll-url'?: string;
  /** Milliseconds between polls when WebSockets fail (default 1000, at least 100). */
  'poll-interval'?: string | number;
  /** Keep listening after a final state (a re-run shows under a new epoch). */
  stay?: boolean | '';
  /** The heading and the bar's aria-label. */
  label?: string;
}

export declare class DjengaTaskProgress extends HTMLElement {
  static readonly observedAttributes: string[];
  /** How the element is connected right now. */
  readonly connection: Connection;
  /** The last rendered snapshot (a group snapshot in group mode, a workflow one in workflow mode), or null. */
  readonly snapshot: Snapshot | null;
  /** What the attributes name: one task, a group, or a workflow. */
  readonly mode: 'task' | 'group' | 'workflow';
  addEventListener<K extends keyof DjengaTaskProgressEventMap>(
    type: K, listener: (this: DjengaTaskProgress, event: DjengaTaskProgressEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof DjengaTaskProgressEventMap>(
    type: K, listener: (this: DjengaTaskProgress, event: DjengaTaskProgressEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions): void;
}

// --- the pure helpers the entry module re-exports ------------------------------------------

export declare const TASK_STATES: readonly TaskState[];
export declare const FINAL_STATES: readonly TaskState[];
export declare const STEP_STATES: readonly StepState[];
export declare const CLOSE: Readonly<{
  DONE: 1000; UNAVAILABLE: 1011; BAD_FRAME: 4400; FORBIDDEN: 4403; TOO_LARGE: 4413; TOO_MANY: 4429; OVERLOADED: 4503;
}>;

/** The page's language: what {% djenga_i18n %} renders, or English. */
export declare class Translator {
  constructor(catalog?: { catalog?: Record<string, string | string[]>; plural?: string | null; locale?: string; dir?: string });
  readonly locale: string;
  readonly dir: '' | 'ltr' | 'rtl';
  gettext(msgid: string, values?: Record<string, unknown>): string;
  ngettext(singular: string, plural: string, n: number, values?: Record<string, unknown>): string;
  number(n: number, options?: Intl.NumberFormatOptions): string;
  percent(p: number): string;
}
export declare function pageTranslator(doc?: Document): Translator;
export declare function compilePlural(expression: string): (n: number) => number;

export declare function isFinalState(state: string): boolean;
export declare function isNewer(shown: Snapshot | null, incoming: Snapshot): boolean;
export declare function shownPercent(snapshot: Snapshot | null | undefined): number | null;
export declare function formatElapsed(ms: number | null, t?: Translator): string;
export declare function formatEta(seconds: number | null, t?: Translator): string;
export declare function stepElapsedMs(step: Step, nowMs: number, capMs?: number | null): number | null;
export declare function taskElapsedMs(snapshot: TaskSnapshot, nowMs: number, capMs?: number | null): number | null;
export declare function etaSeconds(snapshot: TaskSnapshot, nowMs: number): number | null;
export declare function stepProgress(step: Step, t?: Translator): { percent: number; text: string } | null;
export declare function buildUrl(template: string, taskId: string, params?: Record<string, unknown>,
  options?: { base?: string; websocket?: boolean }): string;
export declare function summarize(snapshot: TaskSnapshot | null | undefined, t?: Translator): {
  steps: Step[]; state: string; percent: number | null; current: Step | null; valuetext: string; announcement: string;
};
export declare function summarizeMember(snapshot: TaskSnapshot, index: number, t?: Translator): {
  name: string; state: TaskState; percent: number | null; step: string; label: string;
};
export declare function summarizeGroup(snapshot: GroupSnapshot | null | undefined, t?: Translator): {
  members: TaskSnapshot[]; state: string; percent: number | null; total: number; countText: string; valuetext: string;
};

export declare function retrySecondsLeft(snapshot: TaskSnapshot, nowMs: number): number | null;
export declare function formatRetry(seconds: number | null, t?: Translator): string;
export declare function retryText(snapshot: TaskSnapshot, nowMs: number, t?: Translator): string;
export declare function attemptText(snapshot: TaskSnapshot, t?: Translator): string;
export declare function stageName(stage: WorkflowStage, index: number, t?: Translator): string;
export declare function summarizeWorkflow(snapshot: WorkflowSnapshot | null | undefined, t?: Translator): {
  stages: WorkflowStage[]; state: string; percent: number | null; countText: string; valuetext: string; error: string;
};

// --- the DOM and JSX -------------------------------------------------------------------------

declare global {
  interface HTMLElementTagNameMap {
    'djenga-task-progress': DjengaTaskProgress;
  }
  interface HTMLElementEventMap {
    'djenga:update': DjengaUpdateEvent;
    'djenga:done': DjengaDoneEvent;
    'djenga:error': DjengaErrorEvent;
  }
}

/**
 * The props of <djenga-task-progress> in JSX (see ./react.d.ts). React 19 passes them as
 * attributes and adds a listener for every `on<event>` prop of a custom element:
 * `ondjenga:done={(e) => …}` listens to `djenga:done`.
 */
export interface DjengaTaskProgressJSXProps extends DjengaTaskProgressAttributes {
  id?: string;
  class?: string;
  className?: string;
  style?: unknown;
  hidden?: boolean;
  ref?: unknown;
  key?: string | number | null;
  'ondjenga:update'?: (event: DjengaUpdateEvent) => void;
  'ondjenga:done'?: (event: DjengaDoneEvent) => void;
  'ondjenga:error'?: (event: DjengaErrorEvent) => void;
}
