// The live connection of one widget: a WebSocket that resumes from the last seq shown, backs
// off with jitter when it drops, and falls back to JSON polling (while retrying the socket).

import { CLOSE } from './constants.js';

const BACKOFF_START_MS = 250;
const BACKOFF_CAP_MS = 5000;
const FAILS_BEFORE_POLLING = 3;
const WS_RETRY_WHILE_POLLING_MS = 15000;

/**
 * Frames in, states out. `options`:
 *   wsUrl(): the socket URL (with the resume point), pollUrl(): the JSON URL;
 *   pollInterval(): ms between polls; stay(): keep the socket after a final state;
 *   isFinal(): whether the newest frame was final;
 *   onFrame(data): a frame (text from the socket, an object from a poll);
 *   onMode('connecting' | 'websocket' | 'polling' | 'closed'); onStatus('' | 'reconnecting' | 'polling');
 *   onFatal(code, reason): refused for good (forbidden, bad request), nothing retries.
 */
export class LiveConnection {
  constructor(options) {
    this._o = options;
    this._gen = 0; // bumped on stop so callbacks of old sockets/fetches can tell they are stale
    this._timers = {};
    this._ws = null;
    this._abort = null;
    this.mode = 'closed';
    this.reset();
  }

  /** Forget what past connections learnt (a new task, group or token). */
  reset() {
    this.polling = this._everOpened = this._noWebSocket = false;
    this._attempt = this._failsWithoutOpen = 0;
  }

  start() { this._openSocket(); }

  /** Send `message` (JSON) on the open socket; false if none is open (polling, reconnecting). */
  send(message) {
    if (!this._ws || this._ws.readyState !== 1 || this.mode !== 'websocket') return false;
    this._ws.send(JSON.stringify(message));
    return true;
  }

  /** Nothing to connect to (no task, refused, final): report 'closed'. */
  markClosed() { this._setMode('closed'); }

  /** Close the socket, abort any poll, clear every timer. */
  stop() {
    this._gen++;
    this._closeSocket();
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
    this._abort?.abort();
    this._abort = null;
    this.polling = false;
  }

  /** The task is final: an open socket is left for the server to close; anything else ends here. */
  finished() {
    this._clearTimer('reconnect');
    if (this.mode !== 'websocket') {
      this._stopPolling();
      this._closeSocket();
      this._setMode('closed');
      this._o.onStatus('');
    }
  }

  _openSocket() {
    if (this._noWebSocket || typeof WebSocket === 'undefined') {
      this._noWebSocket = true;
      return this._startPolling();
    }
    let ws;
    try {
      ws = new WebSocket(this._o.wsUrl());
    } catch (err) {
      console.warn('<djenga-task-progress> could not open a WebSocket', err);
      return this._startPolling();
    }
    this._ws = ws;
    if (!this.polling) this._setMode('connecting'); // a background retry while polling stays 'polling'
    // A socket counts as working once the server sent something on it: one that opens and
    // is closed at once (4503 "overloaded", 1011 "Redis unreachable") is a failed attempt,
    // so enough of them in a row fall back to polling like sockets that never open.
    let servedAt = 0;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._everOpened = true;
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      if (!servedAt) {
        servedAt = Date.now();
        this._failsWithoutOpen = 0;
        this._stopPolling();
        this._setMode('websocket');
        this._o.onStatus('');
      }
      this._attempt = 0; // data flowing is proof the connection is healthy
      this._o.onFrame(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onSocketClose(event, servedAt);
    };
  }

  _onSocketClose({ code, reason }, openedAt) {
    if (code === CLOSE.FORBIDDEN || code === CLOSE.BAD_FRAME) {
      this.stop();
      this._setMode('closed');
      return this._o.onFatal(code, reason);
    }
    // After a final state there is nothing more to wait for, unless `stay` asked to keep
    // listening (e.g. for a re-run under a new epoch) and the close was not a deliberate 1000.
    if (this._o.isFinal() && (!this._o.stay() || code === CLOSE.DONE)) {
      this._o.onStatus('');
      return this._setMode('closed');
    }
    if (!openedAt) {
      this._failsWithoutOpen++;
      if (this.polling) return this._scheduleWsRetry();
      if (this._failsWithoutOpen >= FAILS_BEFORE_POLLING && !this._o.isFinal()) return this._startPolling();
    } else if (Date.now() - openedAt > 5000) {
      this._attempt = 0; // a long-lived socket dropping is a fresh incident, not a retry storm
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** Math.min(this._attempt++, 10));
    // "Equal jitter": half fixed, half random, so a restarted server isn't hit by every tab at once.
    const delay = base / 2 + (Math.random() * base) / 2;
    this._setMode('connecting');
    if (this._everOpened) this._o.onStatus('reconnecting');
    this._setTimer('reconnect', () => this._openSocket(), delay);
  }

  _closeSocket() {
    const ws = this._ws;
    this._ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(CLOSE.DONE); } catch { /* already closing */ }
  }

  // --- polling fallback ------------------------------------------------------------------------

  _startPolling() {
    if (this._o.isFinal()) return;
    if (!this.polling) {
      this.polling = true;
      this._setMode('polling');
      this._o.onStatus('polling');
      this._poll();
    }
    if (!this._noWebSocket) this._scheduleWsRetry();
  }

  _scheduleWsRetry() { this._setTimer('wsRetry', () => this._openSocket(), WS_RETRY_WHILE_POLLING_MS); }

  _stopPolling() {
    this.polling = false;
    this._clearTimer('poll');
    this._clearTimer('wsRetry');
    this._abort?.abort();
    this._abort = null;
  }

  async _poll() {
    const gen = this._gen;
    const controller = (this._abort = new AbortController());
    try {
      const res = await fetch(this._o.pollUrl(), {
        credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store', signal: controller.signal,
      });
      if (res.status === 403 && gen === this._gen && this.polling) {
        this.stop();
        this._setMode('closed');
        return this._o.onFatal(403, res.statusText || 'Forbidden');
      }
      const body = res.ok ? await res.json() : null;
      if (gen !== this._gen || !this.polling) return;
      if (res.ok) this._o.onFrame(body);
      else console.warn(`<djenga-task-progress> poll answered HTTP ${res.status}`);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      console.warn('<djenga-task-progress> poll failed', err);
    }
    // Chained timeouts rather than setInterval, so a slow server never has two requests in flight.
    if (gen === this._gen && this.polling) this._setTimer('poll', () => this._poll(), this._o.pollInterval());
  }

  // --- small utilities -------------------------------------------------------------------------

  _setMode(mode) {
    this.mode = mode;
    this._o.onMode(mode);
  }

  _setTimer(name, fn, ms) {
    this._clearTimer(name);
    this._timers[name] = setTimeout(() => { delete this._timers[name]; fn(); }, ms);
  }

  _clearTimer(name) {
    clearTimeout(this._timers[name]);
    delete this._timers[name];
  }
}
