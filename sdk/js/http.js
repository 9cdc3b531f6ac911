// One endpoint and one user's token: every call carries the token, a token
// function is asked once and again only after a 401 (the token expired), and
// any answer that is not a 2xx becomes a BatchgateError.

import { BatchgateError, aborted, invalidArgument, networkError } from "./errors.js";

export const enc = encodeURIComponent;

export class Http {
  #source;
  #pending = null;

  constructor(endpoint, token) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.#source = token;
  }

  /** The token. Concurrent calls share one call of the token function, and a
   *  `refused` token (a 401) is replaced once, however many calls it failed. */
  async token(refused = undefined) {
    const source = this.#source;
    if (typeof source === "string") return source;
    const current = this.#pending;
    if (current && refused !== undefined) {
      const stale = (await current.catch(() => undefined)) === refused;
      // Unless another call already replaced it meanwhile.
      if (stale && this.#pending === current) this.#pending = null;
    }
    if (!this.#pending) {
      const pending = Promise.resolve()
        .then(source)
        .then((t) => {
          if (typeof t !== "string") throw invalidArgument("the token function must return a string");
          return t;
        });
      // A failed attempt is not remembered: the next call asks again.
      pending.catch(() => {
        if (this.#pending === pending) this.#pending = null;
      });
      this.#pending = pending;
    }
    return this.#pending;
  }

  async #send(method, path, { body, headers, signal }, token) {
    const h = new Headers(headers);
    h.set("authorization", `Bearer ${token}`);
    if (body !== undefined && !(body instanceof Blob)) {
      body = JSON.stringify(body);
      h.set("content-type", "application/json");
    }
    try {
      return await fetch(this.endpoint + path, { method, headers: h, body, signal });
    } catch (e) {
      throw signal?.aborted ? aborted("the request") : networkError(e);
    }
  }

  /** The raw response; `body` is JSON-encoded unless it is a Blob. */
  async fetch(method, path, options = {}) {
    const token = await this.token();
    const resp = await this.#send(method, path, options, token);
    if (resp.status === 401 && typeof this.#source === "function") {
      return this.#send(method, path, options, await this.token(token));
    }
    return resp;
  }

  /** A call whose answer is JSON. */
  async call(method, path, body = undefined, headers = undefined) {
    return jsonOf(await this.fetch(method, path, { body, headers }));
  }
}

/** The JSON of a 2xx answer; the API's error as a BatchgateError otherwise. */
export async function jsonOf(resp) {
  let text;
  try {
    text = await resp.text();
  } catch (e) {
    throw networkError(e);
  }
  let value = null;
  try {
    value = JSON.parse(text);
  } catch {
    // Not JSON: a proxy's page, say. The status still speaks.
  }
  if (resp.ok) return value;
  const e = value?.error ?? {};
  const message = typeof e.message === "string" ? e.message : `HTTP ${resp.status}: ${text}`;
  throw new BatchgateError(message, typeof e.code === "string" ? e.code : "http_error", resp.status, e.details);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
