// <djenga-task-console>: the agents' live list of running and recent tasks (staff only),
// fed by ws/djenga/console/; filterable by state and name, searchable by task id.

import { CLOSE } from './progress/constants.js';
import { retryNow, retryText } from './progress/countdown.js';
import { pageTranslator } from './progress/i18n.js';
import { formatElapsed, isFinalState, runningPath, stateLabel } from './progress/snapshot.js';

const BACKOFF_START_MS = 250;
const BACKOFF_CAP_MS = 5000;

/** True if a task snapshot passes the filters {state, name, id}. */
export function matches(task, { state = '', name = '', id = '' } = {}) {
  if (state === 'ACTIVE' && isFinalState(task.state)) return false;
  if (state && state !== 'ACTIVE' && task.state !== state) return false;
  if (name && !String(task.name || '').toLowerCase().includes(name.toLowerCase())) return false;
  if (id && !String(task.task_id || '').startsWith(id.trim())) return false;
  return true;
}

const columns = (t) => [t.gettext('Task'), t.gettext('ID'), t.gettext('State'), t.gettext('Step'), t.gettext('Progress'),
  t.gettext('Started (UTC)'), t.gettext('Duration'), t.gettext('Worker')];
const COLUMN_COUNT = 8;

export class DjengaTaskConsole extends HTMLElement {
  static observedAttributes = ['ws-url'];

  constructor() {
    super();
    this.tasks = new Map(); // task_id -> newest snapshot
    this.rows = new Map(); // task_id -> <tr>
    this.filters = { state: '', name: '', id: '' };
    this._socket = null;
    this._retry = null;
    this._backoff = BACKOFF_START_MS;
    this._ticker = null;
    this._offset = 0; // server clock minus ours, ms
  }

  connectedCallback() {
    this._t = pageTranslator(this.ownerDocument);
    if (!this._table) this._build();
    this._connect();
    this._ticker = setInterval(() => this._tick(), 1000);
  }

  disconnectedCallback() {
    clearInterval(this._ticker);
    clearTimeout(this._retry);
    if (this._socket) this._socket.close(1000);
    this._socket = null;
  }

  attributeChangedCallback() {
    if (this.isConnected && this._table) {
      if (this._socket) this._socket.close(1000);
      this._connect();
    }
  }

  _build() {
    const form = document.createElement('form');
    form.className = 'djenga-console-filters';
    form.setAttribute('role', 'search');
    form.addEventListener('submit', (e) => e.preventDefault());
    const t = this._t;
    const stateSelect = this._field(form, 'select', t.gettext('State'), 'state');
    for (const [value, label] of [['', t.gettext('All')], ['ACTIVE', t.gettext('Not finished')],
      ...(this.getAttribute('states') || '').split(',').filter(Boolean).map((s) => [s, stateLabel(s, t) || s])]) {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = label;
      stateSelect.append(option);
    }
    this._field(form, 'input', t.gettext('Task name'), 'name').type = 'search';
    this._field(form, 'input', t.gettext('Task id'), 'id').type = 'search';
    this._status = document.createElement('p');
    this._status.className = 'djenga-console-status';
    this._status.setAttribute('role', 'status');
    this._table = document.createElement('table');
    this._table.className = 'djenga-console-table';
    const head = this._table.createTHead().insertRow();
    for (const column of columns(t)) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = column;
      head.append(th);
    }
    this._body = this._table.createTBody();
    // Its own tbody, so the task rows stay the only children of _body.
    const empty = this._table.createTBody();
    this._empty = empty.insertRow();
    this._empty.className = 'djenga-console-empty';
    this._emptyCell = this._empty.insertCell();
    this._emptyCell.colSpan = COLUMN_COUNT;
    this._empty.hidden = true;
    this.append(form, this._status, this._table);
  }

  _field(form, tag, label, key) {
    const wrapper = document.createElement('label');
    const text = document.createElement('span');
    text.textContent = `${label} `;
    const control = document.createElement(tag);
    control.name = key;
    control.addEventListener('input', () => {
      this.filters[key] = control.value;
      this._applyFilters();
    });
    wrapper.append(text, control);
    form.append(wrapper);
    return control;
  }

  _connect() {
    const path = this.getAttribute('ws-url') || '/ws/djenga/console/';
    const url = new URL(path, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    this._socket = socket;
    this.dataset.connection = 'connecting';
    socket.onopen = () => {
      this._backoff = BACKOFF_START_MS;
      this.dataset.connection = 'websocket';
      this._status.textContent = '';
    };
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message && message.type === 'tasks' && Array.isArray(message.tasks)) this._receive(message);
    };
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      if (event.code === CLOSE.FORBIDDEN) {
        this.dataset.connection = 'closed';
        this._status.textContent = this._t.gettext('Only staff can watch the task console.');
        return;
      }
      this.dataset.connection = 'connecting';
      this._status.textContent = this._t.gettext('Reconnecting…');
      const delay = this._backoff / 2 + Math.random() * (this._backoff / 2);
      this._backoff = Math.min(this._backoff * 2, BACKOFF_CAP_MS);
      this._retry = setTimeout(() => this._connect(), delay);
    };
  }

  _receive({ tasks, reset, append }) {
    if (reset) {
      this.tasks.clear();
      this.rows.clear();
      this._body.replaceChildren();
    }
    this._received = true;
    // The list on connecting (reset) comes newest first and keeps that order. A live batch
    // holds the tasks that changed since the last one: each goes to the top, the most
    // recently updated last, so it ends up first.
    // An "append" frame carries the rest of that list (it did not fit one frame), in order.
    const listed = reset || append;
    const incoming = tasks.filter((task) => task && typeof task.task_id === 'string');
    if (!listed) incoming.sort((a, b) => (Number(a.updated_at) || 0) - (Number(b.updated_at) || 0));
    for (const task of incoming) {
      const held = this.tasks.get(task.task_id);
      if (held && held.epoch === task.epoch && (held.seq || 0) >= (task.seq || 0)) continue;
      if (typeof task.updated_at === 'number') {
        this._offset = Math.max(this._offset - 1, task.updated_at * 1000 - Date.now());
      }
      this.tasks.set(task.task_id, task);
      this._render(task, listed ? 'append' : 'prepend');
    }
    this._showEmpty();
    this.dispatchEvent(new CustomEvent('djenga:console', { bubbles: true, detail: { count: this.tasks.size } }));
  }

  _render(task, place) {
    let row = this.rows.get(task.task_id);
    if (!row) {
      row = document.createElement('tr');
      row.dataset.taskId = task.task_id;
      for (let i = 0; i < COLUMN_COUNT; i += 1) row.insertCell();
      this.rows.set(task.task_id, row);
    }
    // Newest activity first: a changed row moves to the top.
    if (place === 'append') this._body.append(row);
    else this._body.prepend(row);
    const cells = row.cells;
    row.dataset.state = task.state || '';
    cells[0].textContent = task.name || '';
    const link = document.createElement('a');
    const template = this.getAttribute('task-url') || '/djenga/console/tasks/{task-id}/';
    link.href = template.replace('{task-id}', encodeURIComponent(task.task_id));
    link.textContent = task.task_id.slice(0, 8);
    link.title = task.task_id;
    cells[1].replaceChildren(link);
    cells[2].textContent = stateLabel(task.state, this._t) || task.state || '';
    const path = runningPath(task); // nested steps: "Export › Write — row 2"
    const step = path[path.length - 1];
    cells[3].textContent = step
      ? [path.map((s) => s.description).filter(Boolean).join(' › '), step.message].filter(Boolean).join(' — ')
      : '';
    this._retryCountdown(task, cells[3]);
    const percent = Math.floor(Number(task.percent) || 0);
    const meter = document.createElement('progress');
    meter.max = 100;
    meter.value = percent;
    meter.textContent = this._t.percent(percent);
    const label = document.createElement('span');
    label.textContent = ` ${this._t.percent(percent)}`;
    cells[4].replaceChildren(meter, label);
    // UTC, as the task page's timeline: one clock for the console, whatever the browser's zone.
    cells[5].textContent = task.started_at ? new Date(task.started_at * 1000).toISOString().slice(11, 19) : '';
    cells[7].textContent = (task.private && task.private.worker) || '';
    this._duration(task, cells[6]);
    row.hidden = !matches(task, this.filters);
  }

  _duration(task, cell) {
    if (!task.started_at) { cell.textContent = ''; return; }
    const end = task.ended_at || (isFinalState(task.state) ? task.updated_at : (Date.now() + this._offset) / 1000);
    cell.textContent = formatElapsed((end - task.started_at) * 1000, this._t);
  }

  _tick() {
    for (const [id, task] of this.tasks) {
      if (!isFinalState(task.state)) this._duration(task, this.rows.get(id).cells[6]);
      if (task.state === 'RETRY') this._retryCountdown(task, this.rows.get(id).cells[3]);
    }
  }

  /** A RETRY task's Step cell counts down to its next attempt ("Retrying in 12 seconds"). */
  _retryCountdown(task, cell) {
    const countdown = retryText(task, retryNow(this._offset), this._t);
    if (countdown && cell.textContent !== countdown) cell.textContent = countdown;
  }

  _applyFilters() {
    for (const [id, task] of this.tasks) this.rows.get(id).hidden = !matches(task, this.filters);
    this._showEmpty();
  }

  /** One line instead of an empty table: no task at all yet, or none passes the filters. */
  _showEmpty() {
    if (!this._received) return;
    let visible = false;
    for (const row of this.rows.values()) if (!row.hidden) { visible = true; break; }
    this._empty.hidden = visible;
    this._emptyCell.textContent = this.tasks.size ? this._t.gettext('No tasks match these filters.') : this._t.gettext('No tasks yet.');
  }
}

if (!customElements.get('djenga-task-console')) {
  customElements.define('djenga-task-console', DjengaTaskConsole);
}
