// Types of <djenga-task-console> (djenga-widget/console): the staff console's live task list.

import type { TaskSnapshot } from './index.js';

export declare function matches(task: TaskSnapshot, filters?: { state?: string; name?: string; id?: string }): boolean;

export declare class DjengaTaskConsole extends HTMLElement {
  static readonly observedAttributes: string[];
  /** task_id -> the newest snapshot shown. */
  readonly tasks: Map<string, TaskSnapshot>;
}

declare global {
  interface HTMLElementTagNameMap {
    'djenga-task-console': DjengaTaskConsole;
  }
  interface HTMLElementEventMap {
    'djenga:console': CustomEvent<{ count: number }>;
  }
}
