// The DjengaTaskProgress class: attributes in, a view (task or group) and a live connection
// wired together, events out. The entry module (djenga-task-progress.js) defines the tag.

import { CancelControl } from './cancel.js';
import { CLOSE, FRAME, isFinalState, WIRE_VERSION } from './constants.js';
import { LiveConnection } from './connection.js';
import { findParts, TEMPLATE } from './dom.js';
import { GroupView } from './group-view.js';
import { pageTranslator } from './i18n.js';
import { buildUrl, isNewer, isObject, num, text } from './snapshot.js';
import { setClockText, TaskView } from './task-view.js';
import { WorkflowView } from './workflow-view.js';

const DEFAULT_URLS = {
  task: { ws: '/ws/djenga/tasks/{task-id}/', poll: '/djenga/tasks/{task-id}/' },
  group: { ws: '/ws/djenga/groups/', poll: '/djenga/groups/' }, // the group token is the whole query
  workflow: { ws: '/ws/djenga/workflows/', poll: '/djenga/workflows/' }, // so is the workflow token
};

export class DjengaTaskProgress extends HTMLElement {
  static observedAttributes = ['task-id', 'token', 'group-token', 'workflow-token', 'ws-url', 'poll-url', 'poll-interval', 'stay', 'label'];

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = TEMPLATE;
    this._els = findParts(root);
    this._views = { task: new TaskView(this, this._els), group: new GroupView(this, this._els) };
    this._cancel = new CancelControl(this, this._els.root, (message) => this._conn.send(message));
    this._views.workflow = new WorkflowView(this, this._els);
    this._conn = new LiveConnection({
      wsUrl: () => this._wsUrl(),
      pollUrl: () => this._url('poll'),
      pollInterval: () => this._pollInterval(),
      stay: () => this.hasAttribute('stay'),
      isFinal: () => this._final,
      onFrame: (data) => this._receive(data),
      onMode: (mode) => {
        if (this._live || this.hasAttribute('data-connection')) this.setAttribute('data-connection', mode);
      },
      onStatus: (status) => { this._status = status; this._renderStatus(); },
      onFatal: (code, reason) => this._fail(code, reason),
    });
    this._tick = null;
    this._live = false;
    this._resetState();
  }

  /** 'connecting' | 'websocket' | 'polling' | 'closed' */
  get connection() { return this._conn.mode; }

  /** 'task' | 'group' | 'workflow': what the attributes name (a workflow-token wins over a group-token). */
  get mode() { return this._workflow ? 'workflow' : this._group ? 'group' : 'task'; }

  /** The last rendered snapshot (a group snapshot in group mode), or null. */
  get snapshot() { return this._snap; }

  connectedCallback() {
    this._live = true;
    // The page's language: read on connecting, so a catalog added before the element counts.
    this._t = pageTranslator(this.ownerDocument);
    if (this._t.dir) this._els.root.dir = this._t.dir;
    this._els.elapsed.firstChild.textContent = this._t.gettext('Time taken: ');
    // Attributes changed while detached are not seen live: start afresh if they name something else.
    if (this._sourceKey() !== this._source) this._resetState();
    this._restart(false);
  }

  disconnectedCallback() {
    this._live = false;
    this._teardown();
    this._conn.markClosed();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    // Before connectedCallback the parser reports every initial attribute; connecting handles those.
    if (oldValue === newValue || !this._live) return;
    if (name === 'label') this._render();
    else if (name === 'poll-interval') this._renderStatus();
    else if (['task-id', 'token', 'group-token', 'workflow-token', 'ws-url'].includes(name) && !this._restartQueued) {
      // Coalesce e.g. a task-id and token set in the same tick into a single reconnect.
      this._restartQueued = true;
      queueMicrotask(() => {
        this._restartQueued = false;
        if (this._live) this._restart(true);
      });
    }
    // poll-url and stay are read whenever the next request is made.
  }

  _restart(reset) {
    if (reset) {
      this._teardown();
      this._resetState();
    }
    this.setAttribute('data-mode', this.mode);
    this._render();
    this._start();
  }

  _sourceKey() {
    return ['task-id', 'token', 'group-token', 'workflow-token'].map((name) => this.getAttribute(name) ?? '').join('\n');
  }

  _resetState() {
    // Group mode: a group-token and no task-id. Fixed until the attributes change (which resets).
    this._workflow = !this.getAttribute('task-id') && this.hasAttribute('workflow-token');
    this._group = !this._workflow && !this.getAttribute('task-id') && this.hasAttribute('group-token');
    this._view = this._views[this.mode];
    this._source = this._sourceKey();
    this._els.steps.hidden = this._group || this._workflow;
    this._els.tasks.hidden = !this._group;
    this._views.workflow.active = this._workflow;
    this._views.task.reset();
    this._views.group.reset();
    this._cancel?.reset();
    this._views.workflow.reset();
    delete this._els.fill.dataset.shown;
    this._snap = null;
    this._offset = null; // server clock minus client clock, in ms
    this._final = this._doneFired = false;
    this._fatal = ''; // set once forbidden / rejected: nothing reconnects until the task, group, token or ws-url change
    this._status = '';
    this._conn.reset();
    this._els.live.textContent = this._els.status.textContent = '';
    setClockText(this._els, '', ''); // group mode never sets these: clear what a task showed
  }

  _start() {
    if (this._fatal || (this._final && !this.hasAttribute('stay'))) return this._conn.markClosed();
    if (!this.getAttribute({ task: 'task-id', group: 'group-token', workflow: 'workflow-token' }[this.mode])) {
      console.warn('<djenga-task-progress> needs a task-id (or a group-token, or a workflow-token) attribute');
      return this._conn.markClosed();
    }
    this._conn.start();
  }

  _teardown() {
    this._conn.stop();
    clearInterval(this._tick);
    this._tick = null;
  }

  _wsUrl() {
    const params = { stay: this.hasAttribute('stay') ? '1' : null };
    // Tell the server what we already show so it can skip re-sending it.
    if (this._snap) Object.assign(params, { seq: num(this._snap.seq), epoch: this._snap.epoch });
    return this._url('ws', params);
  }

  /** The `kind` ('ws' | 'poll') URL for this task or group, with its token first. */
  _url(kind, params = {}) {
    const mode = this.mode;
    const group = mode !== 'task'; // a group or a workflow: its token is the whole query
    const template = this.getAttribute(`${kind}-url`) || DEFAULT_URLS[mode][kind];
    return buildUrl(template, group ? '' : this.getAttribute('task-id'),
      { token: this.getAttribute(group ? `${mode}-token` : 'token'), ...params }, { websocket: kind === 'ws' });
  }

  _pollInterval() {
    const ms = Number(this.getAttribute('poll-interval'));
    return Number.isFinite(ms) && ms > 0 ? Math.max(ms, 100) : 1000;
  }

  _renderStatus() {
    const t = this._t || pageTranslator(this.ownerDocument);
    let message = '';
    if (this._status === 'reconnecting') message = t.gettext('Reconnecting…');
    else if (this._status === 'polling') {
      const every = t.unit(Math.round(this._pollInterval() / 100) / 10, 'second', this._pollInterval() % 1000 ? 1 : 0);
      message = t.gettext('Live updates unavailable, checking every %(interval)s', { interval: every });
    }
    this._els.status.textContent = message;
  }

  _receive(data) {
    let snap = data;
    if (typeof data === 'string') {
      try { snap = JSON.parse(data); } catch { snap = undefined; }
    }
    if (!isObject(snap)) {
      console.warn('<djenga-task-progress> ignoring a frame that is not a JSON object', data);
      return;
    }
    // Only snapshots are rendered: untyped (or "snapshot") frames of a task, "group" frames of a
    // group. The "recovery" message a reconnect may open with carries no state, so it is skipped.
    const expected = { task: FRAME.SNAPSHOT, group: FRAME.GROUP, workflow: FRAME.WORKFLOW }[this.mode];
    if (snap.type != null && snap.type !== expected) {
      if (snap.type === FRAME.RECOVERY) return;
      if (snap.type === FRAME.ACTION) return this._cancel.answer(snap); // the answer to our Cancel
      const mode = this.mode;
      console.warn(`<djenga-task-progress> ignoring a ${text(snap.type) || 'non-snapshot'} frame in ${mode} mode`);
      return;
    }
    if (num(snap.v) !== null && snap.v > WIRE_VERSION && !this._warnedVersion) {
      this._warnedVersion = true;
      console.warn(`<djenga-task-progress> wire format v${snap.v} is newer than v${WIRE_VERSION}; rendering what is understood`);
    }
    const updatedAt = num(snap.updated_at);
    if (updatedAt !== null) {
      // Every snapshot's updated_at is at or before the server's "now", so each sample is a lower
      // bound of the clock offset; keeping the largest avoids under-counting when a poll returns
      // an older unchanged snapshot.
      const offset = updatedAt * 1000 - Date.now();
      this._offset = this._offset === null ? offset : Math.max(this._offset, offset);
    }
    const prev = this._snap;
    if (!isNewer(prev, snap)) return;
    if (prev && (snap.epoch ?? null) !== (prev.epoch ?? null)) this._doneFired = false; // a re-run may finish again
    this._snap = snap;
    this._final = isFinalState(snap.state);
    this._render();
    const news = this._view.news(prev, snap, this._t);
    if (news) this._els.live.textContent = news;
    this._emit('djenga:update', snap);
    if (this._final) this._finish();
  }

  _finish() {
    if (!this._doneFired) {
      this._doneFired = true;
      this._emit('djenga:done', this._snap);
    }
    this._conn.finished();
  }

  _fail(code, reason) {
    this._teardown();
    const t = this._t;
    if (code === CLOSE.BAD_FRAME) this._fatal = t.gettext('Live updates stopped: the server rejected this connection.');
    else if (this._group || this._workflow) this._fatal = t.gettext('You are not allowed to watch these tasks.');
    else this._fatal = t.gettext('You are not allowed to watch this task.');
    this._status = '';
    this._renderStatus();
    this._render();
    this._els.live.textContent = this._fatal;
    this._emit('djenga:error', { code, reason: reason || '' });
  }

  _context() {
    return {
      t: this._t || pageTranslator(this.ownerDocument), label: this.getAttribute('label'), fatal: this._fatal,
      final: this._final, live: this._live, offset: this._offset,
    };
  }

  _render() {
    const ctx = this._context();
    const ticking = this._view.render(this._snap, ctx);
    this._cancel.render(this._snap, ctx.t);
    if (ticking && !this._tick) this._tick = setInterval(() => this._view.renderClock(this._snap, this._context()), 1000);
    else if (!ticking) {
      clearInterval(this._tick);
      this._tick = null;
    }
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true })); }
}
