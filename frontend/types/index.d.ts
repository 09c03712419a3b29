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

export type Snapshot = TaskSnapshot | GroupSnapshot;

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
  /** The last rendered snapshot (a group snapshot in group mode), or null. */
  readonly snapshot: Snapshot | null;
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
