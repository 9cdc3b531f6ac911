// `watch(jobId)`: the job's views as they change, as an async iterator. It
// listens on the JobObject's WebSocket where the platform has one (browsers;
// Node from 22), reconnecting by itself, and falls back to `ETag` polling (one
// cheap 304 per interval while nothing changes) when there is no socket or it
// keeps dropping. It ends after the view in which the job ended and was charged.

import { aborted } from "./errors.js";
import { enc, jsonOf, sleep } from "./http.js";

/** Sockets that drop this many times in a row give way to polling. */
const MAX_SOCKET_FAILURES = 3;
const ENDED = ["succeeded", "failed", "expired", "cancelled"];

/** The job ended and its charge is known: nothing more will change. */
export const isFinal = (view) => ENDED.includes(view?.state) && Number.isInteger(view?.cost?.charged);

/** A WebSocket's text messages, one promise at a time; `null` once it closed. */
class Socket {
  #ws;
  #queue = [];
  #waiting = null;
  #closed = false;

  constructor(url) {
    this.#ws = new WebSocket(url);
    this.#ws.onmessage = (e) => typeof e.data === "string" && this.#push(e.data);
    this.#ws.onclose = this.#ws.onerror = () => this.#push(null);
  }

  #push(message) {
    if (this.#closed) return;
    this.#closed = message === null;
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting) waiting(message);
    else this.#queue.push(message);
  }

  next() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  close() {
    this.#ws.onmessage = this.#ws.onclose = this.#ws.onerror = null;
    this.#ws.close();
    this.#push(null);
  }
}

export class JobWatch {
  #http;
  #id;
  #intervalMs;
  #socket = null;
  #socketFailures;
  #etag = null;
  #polled = false;
  #lastVersion = 0;
  #finished = false;

  constructor(http, id, intervalMs) {
    this.#http = http;
    this.#id = id;
    this.#intervalMs = intervalMs;
    this.#socketFailures = typeof WebSocket === "function" ? 0 : MAX_SOCKET_FAILURES;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** `{value: job, done: false}` for each change, then `{done: true}`. */
  async next() {
    while (!this.#finished) {
      let view = this.#socketFailures < MAX_SOCKET_FAILURES ? await this.#fromSocket() : null;
      // The socket closed: one poll says whether the job ended meanwhile.
      if (view === null && !this.#finished) view = await this.#byPolling();
      if (view === null) break;
      const version = Number(view.version) || 0;
      if (version <= this.#lastVersion && !isFinal(view)) continue;
      this.#lastVersion = version;
      if (isFinal(view)) this.return();
      return { value: view, done: false };
    }
    return { value: undefined, done: true };
  }

  /** Stop watching (what `break` in a `for await` calls); a pending `next` ends. */
  async return() {
    this.#finished = true;
    this.#socket?.close();
    this.#socket = null;
    return { value: undefined, done: true };
  }

  /** The next view from the socket, or `null` when it closed or failed. */
  async #fromSocket() {
    if (!this.#socket) {
      // A socket cannot carry headers: a single-use ticket (60 s) goes in its
      // URL instead of the token, which may live for days and URLs get logged.
      let ticket;
      try {
        ({ ticket } = await this.#http.call("POST", `/v1/jobs/${enc(this.#id)}/watch-ticket`));
      } catch {
        this.#socketFailures += 1; // counted like a drop; polling takes over after a few
        return null;
      }
      const base = this.#http.endpoint.replace(/^http/, "ws");
      try {
        this.#socket = new Socket(`${base}/v1/jobs/${enc(this.#id)}/watch?ticket=${enc(ticket)}`);
      } catch {
        this.#socketFailures = MAX_SOCKET_FAILURES; // the platform refuses sockets here
        return null;
      }
    }
    const text = await this.#socket.next();
    let view = null;
    try {
      view = text === null ? null : JSON.parse(text);
    } catch {
      // An unreadable message counts as a drop.
    }
    if (view !== null) {
      this.#socketFailures = 0;
      return view;
    }
    // Closed: normal once the job ended, otherwise a drop to count.
    this.#socket?.close();
    this.#socket = null;
    this.#socketFailures += 1;
    return null;
  }

  /** Poll until the view differs from the last one (`If-None-Match`); `null` if stopped. */
  async #byPolling() {
    for (;;) {
      if (this.#polled) await sleep(this.#intervalMs);
      this.#polled = true;
      if (this.#finished) return null;
      const headers = this.#etag ? { "if-none-match": this.#etag } : {};
      const resp = await this.#http.fetch("GET", `/v1/jobs/${enc(this.#id)}`, { headers });
      if (resp.status === 304) continue;
      this.#etag = resp.headers.get("etag");
      return jsonOf(resp);
    }
  }
}

/** Every view to `onProgress` until the job ends; an aborted `signal` rejects at once. */
export async function wait(watch, { onProgress, signal } = {}) {
  let onAbort;
  const abortion = new Promise((_, reject) => {
    onAbort = () => reject(aborted("wait"));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
  abortion.catch(() => {}); // observed by the race below, if at all
  let last;
  try {
    for (;;) {
      const step = await Promise.race([watch.next(), abortion]);
      if (step.done) return last;
      last = step.value;
      onProgress?.(last);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    watch.return();
  }
}
