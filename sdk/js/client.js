// The `Batchgate` class: one per endpoint and user. Quotes, validation and
// result costs come from batchgate's core compiled to wasm (the worker's own
// rules, to the micro-credit); everything else is a call to the worker's API.
// Each method is documented where users read it: index.d.ts.

import { Rules } from "batchgate-wasm";
import { BatchgateError, invalidArgument } from "./errors.js";
import { Http, enc, jsonOf } from "./http.js";
import { generate, generateStream } from "./generate.js";
import { results } from "./results.js";
import { upload } from "./upload.js";
import { JobWatch, wait } from "./watch.js";

/** The options named in `keys` that are strings or numbers, as a query string. */
function query(options, keys) {
  const q = new URLSearchParams();
  for (const k of keys) {
    const v = options?.[k];
    if (typeof v === "string" || typeof v === "number") q.set(k, String(v));
  }
  return q.toString();
}

/** An idempotency key: 128 random bits (works outside secure contexts too). */
function randomKey() {
  return Array.from(crypto.getRandomValues(new Uint32Array(4)), (n) => n.toString(16).padStart(8, "0")).join("");
}

function intervalOf(options) {
  const ms = Number(options?.intervalMs ?? 1000);
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 50), 60_000) : 1000;
}

/** A wasm rule's answer, or its refusal (a message) as a BatchgateError;
 *  anything else thrown (a trap) is a bug, passed on as it is. */
function checked(rule, status, code) {
  try {
    return rule();
  } catch (refusal) {
    throw typeof refusal === "string" ? new BatchgateError(refusal, code, status) : refusal;
  }
}

export class Batchgate {
  #http;
  #rules;

  constructor(options) {
    const { endpoint, token, prices } = options ?? {};
    if (typeof endpoint !== "string") throw invalidArgument("endpoint must be a URL string");
    if (typeof token !== "string" && typeof token !== "function") {
      throw invalidArgument("token must be a string or a function");
    }
    this.#http = new Http(endpoint, token);
    const table = prices == null ? undefined : JSON.stringify(prices);
    this.#rules = checked(() => new Rules(table), 0, "invalid_argument");
  }

  estimate(input) {
    const { model, requests } = input ?? {};
    if (typeof model !== "string") throw invalidArgument("model is required");
    if (!Array.isArray(requests)) throw invalidArgument("requests must be an array");
    return JSON.parse(checked(() => this.#rules.estimate(model, JSON.stringify(requests)), 400, "invalid_requests"));
  }

  models() {
    return JSON.parse(this.#rules.models());
  }

  resultCost(model, line) {
    return JSON.parse(checked(() => this.#rules.resultCost(String(model), JSON.stringify(line)), 0, "invalid_argument"));
  }

    async submit(input) {
    const { idempotencyKey, ...body } = input ?? {};
    const { model, requests } = body;
    const quote = this.estimate({ model, requests });
    const { balance } = await this.#http.call("GET", "/v1/account");
    // Realtime (and a job that may fall back to it) is reserved the standard
    // price; `auto` picks its lane on the server, so the batch price is the floor.
    const needed = body.mode === "realtime" || body.fallback === "realtime" ? quote.standard : quote.batch;
    if (balance < needed) {
      const message = `the job needs ${needed} micro-credits and the balance is ${balance}`;
      throw new BatchgateError(message, "insufficient_credits", 402, { quote, balance, needed });
    }
    const key = typeof idempotencyKey === "string" ? idempotencyKey : randomKey();
    return this.#http.call("POST", "/v1/jobs", body, { "idempotency-key": key });
  }

  job(id) {
    return this.#http.call("GET", `/v1/jobs/${enc(id)}`);
  }

    list(options) {
    const state = Array.isArray(options?.state) ? options.state.join(",") : options?.state;
    return this.#http.call("GET", `/v1/jobs?${query({ ...options, state }, ["state", "limit", "cursor"])}`);
  }

  generate(model, request, options) {
    if (typeof model !== "string") return Promise.reject(invalidArgument("model is required"));
    return generate(this.#http, model, request, options);
  }

  generateStream(model, request, options) {
    if (typeof model !== "string") throw invalidArgument("model is required");
    return generateStream(this.#http, model, request, options);
  }

  cancel(id) {
    return this.#http.call("POST", `/v1/jobs/${enc(id)}/cancel`);
  }

  retryFailed(id) {
    return this.#http.call("POST", `/v1/jobs/${enc(id)}/retry`);
  }

  deleteJob(id) {
    return this.#http.call("DELETE", `/v1/jobs/${enc(id)}`);
  }

    result(id, key) {
    return this.#http.call("GET", `/v1/jobs/${enc(id)}/results/${enc(key)}`);
  }

  async resultMedia(id, key, n) {
    const resp = await this.#http.fetch("GET", `/v1/jobs/${enc(id)}/results/${enc(key)}/media/${Number(n)}`);
    if (!resp.ok) await jsonOf(resp);
    return resp.blob();
  }

  account() {
    return this.#http.call("GET", "/v1/account");
  }

  ledger(options) {
    return this.#http.call("GET", `/v1/account/ledger?${query(options, ["limit", "cursor"])}`);
  }

  events(id, options) {
    return this.#http.call("GET", `/v1/jobs/${enc(id)}/events?${query(options, ["after", "limit"])}`);
  }

  watch(id, options) {
    return new JobWatch(this.#http, id, intervalOf(options));
  }

  wait(id, options) {
    return wait(new JobWatch(this.#http, id, intervalOf(options)), options);
  }

  results(id, options) {
    return results(this.#http, id, options);
  }

  upload(blob, options) {
    if (!(blob instanceof Blob)) return Promise.reject(invalidArgument("upload takes a Blob or a File"));
    return upload(this.#http, blob, options);
  }
}
