// The JavaScript client's own logic, in Node (`node --test`, run by `cargo
// xtask test`), against a scripted `fetch`: what the end-to-end tests cannot
// steer (chunk boundaries, concurrent token calls, a 401 mid-session, aborts
// while a poll is pending). The modules under test need no wasm.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BatchgateError } from "../js/errors.js";
import { generate, generateStream } from "../js/generate.js";
import { Http } from "../js/http.js";
import { results } from "../js/results.js";
import { upload } from "../js/upload.js";
import { JobWatch, wait } from "../js/watch.js";

/** Serve each request with `handler(url, init)`; returns the log of requests. */
function serve(handler) {
  const log = [];
  globalThis.fetch = async (url, init = {}) => {
    const u = new URL(url);
    log.push({ method: init.method, path: u.pathname + u.search, headers: new Headers(init.headers), body: init.body });
    return handler(u, init, log.length);
  };
  return log;
}

const json = (value, status = 200, headers = {}) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json", ...headers } });

/** A body delivered in exactly these chunks (bytes, so a character can be split). */
function chunked(parts, onCancel = () => {}) {
  const bytes = parts.map((p) => (typeof p === "string" ? new TextEncoder().encode(p) : p));
  return new ReadableStream({
    pull(c) {
      if (bytes.length) c.enqueue(bytes.shift());
      else c.close();
    },
    cancel: onCancel,
  });
}

test("result lines are whole across chunk boundaries, split characters and pages", async () => {
  const e = new TextEncoder().encode('{"key":"é"}\n');
  serve((url) => {
    if (!url.searchParams.get("cursor")) {
      const body = chunked(['{"key":"a","resp', 'onse":{}}\n{"ke', 'y":"b","error":{}}\n', e.slice(0, 9), e.slice(9)]);
      return new Response(body, { headers: { "batchgate-next-cursor": "page 2" } });
    }
    assert.equal(url.searchParams.get("cursor"), "page 2");
    return new Response(chunked(['\n{"key":"c","response":{}}']));
  });
  const keys = [];
  for await (const line of results(new Http("http://x", "t"), "job/1")) keys.push(line.key);
  assert.deepEqual(keys, ["a", "b", "é", "c"]);
});

test("leaving the results loop early cancels the page being read", async () => {
  let cancelled = false;
  serve(() => new Response(chunked(['{"key":"a"}\n', '{"key":"b"}\n'], () => (cancelled = true))));
  for await (const line of results(new Http("http://x", "t"), "j")) {
    assert.equal(line.key, "a");
    break;
  }
  assert.ok(cancelled);
});

test("a token function is called once for concurrent calls, and again after a 401", async () => {
  let calls = 0;
  const http = new Http("http://x/", async () => `t${++calls}`);
  const log = serve((url, init) => {
    const auth = new Headers(init.headers).get("authorization");
    // The server accepts only the second token: the first has expired.
    return auth === "Bearer t2" ? json({ ok: true }) : json({ error: { code: "expired_token", message: "expired" } }, 401);
  });
  const answers = await Promise.all([http.call("GET", "/v1/account"), http.call("GET", "/v1/account")]);
  assert.deepEqual(answers, [{ ok: true }, { ok: true }]);
  assert.equal(calls, 2, "one call for both requests, one more for the token both had refused");
  const before = calls;
  await http.call("GET", "/v1/account");
  assert.equal(calls, before, "a good token is reused");
  assert.equal(log[0].path, "/v1/account", "the endpoint's trailing slash is dropped");
});

test("API errors, unreadable errors and network failures are told apart", async () => {
  const http = new Http("http://x", "t");
  serve(() => json({ error: { code: "not_found", message: "no such job", details: { id: "j" } } }, 404));
  await assert.rejects(http.call("GET", "/v1/jobs/j"), (e) => {
    return e instanceof BatchgateError && e.status === 404 && e.code === "not_found" && e.details.id === "j" && !e.isNetworkError;
  });
  serve(() => new Response("<html>bad gateway</html>", { status: 502 }));
  await assert.rejects(http.call("GET", "/"), (e) => e.status === 502 && e.code === "http_error" && /bad gateway/.test(e.message));
  serve(() => {
    throw new TypeError("fetch failed");
  });
  await assert.rejects(http.call("GET", "/"), (e) => e.isNetworkError && e.status === 0 && e.cause instanceof TypeError);
});

test("watch polls with ETag, skips stale views and ends with the charged job", async () => {
  const views = [
    { version: 1, state: "running" },
    { version: 1, state: "running" }, // unchanged, though the server sent it anyway
    { version: 3, state: "succeeded" }, // ended, not yet charged
    { version: 4, state: "succeeded", cost: { charged: 5 } },
  ];
  let i = 0;
  const log = serve((url, init) => {
    const etag = new Headers(init.headers).get("if-none-match");
    if (etag === '"v1"' && i === 1) {
      i += 1;
      return new Response(null, { status: 304 });
    }
    const v = views[Math.min(i++, views.length - 1)];
    return json(v, 200, { etag: `"v${v.version}"` });
  });
  const seen = [];
  for await (const v of new JobWatch(new Http("http://x", "t"), "j", 1)) seen.push(`${v.version}:${v.state}`);
  assert.deepEqual(seen, ["1:running", "3:succeeded", "4:succeeded"]);
  assert.equal(log[1].headers.get("if-none-match"), '"v1"');
});

test("an aborted wait rejects at once, though a poll is still pending", async () => {
  serve(() => new Promise(() => {})); // the server never answers
  const controller = new AbortController();
  const waiting = wait(new JobWatch(new Http("http://x", "t"), "j", 50), { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(waiting, (e) => e instanceof BatchgateError && e.code === "aborted");
});

test("an upload continues from the server's offset when another attempt moved it", async () => {
  const size = 10;
  let received = 0;
  const log = serve((url, init) => {
    if (init.method === "POST") return json({ id: "u1", size, received, state: "open", chunkGranularity: 4, maxChunkBytes: 4 });
    if (init.method === "GET") return json({ id: "u1", size, received, state: "open" });
    const [, start, end] = new Headers(init.headers).get("content-range").match(/bytes (\d+)-(\d+)\//);
    if (Number(start) === 4 && received === 4) {
      received = 8; // a retry from elsewhere got there first
      return json({ error: { code: "wrong_offset", message: "expected 8" } }, 409);
    }
    received = Number(end) + 1;
    const done = received === size;
    return json({ id: "u1", size, received, state: done ? "done" : "open", ...(done && { file: { name: "files/f" } }) });
  });
  const progress = [];
  const file = await upload(new Http("http://x", "t"), new Blob(["0123456789"]), { onProgress: (p) => progress.push(p.received) });
  assert.deepEqual(file, { name: "files/f" });
  assert.deepEqual(progress, [0, 4, 8, 10]);
  const ranges = log.filter((r) => r.method === "PUT").map((r) => r.headers.get("content-range"));
  assert.deepEqual(ranges, ["bytes 0-3/10", "bytes 4-7/10", "bytes 8-9/10"]);
});

test("generate answers with Gemini's response, its cost and call id; a refusal is a BatchgateError", async () => {
  const log = serve((url, init) => {
    const body = JSON.parse(init.body);
    if (body.model === "poor") return json({ error: { code: "insufficient_credits", message: "no" } }, 402);
    return json({ candidates: [] }, 200, { "batchgate-cost": '{"standard":7,"charged":7}', "batchgate-call-id": "gen_1" });
  });
  const http = new Http("http://x", "t");
  const r = await generate(http, "m", { contents: [] });
  assert.deepEqual(r, { response: { candidates: [] }, cost: { standard: 7, charged: 7 }, callId: "gen_1" });
  assert.equal(log[0].path, "/v1/generate");
  await assert.rejects(generate(http, "poor", {}), (e) => e instanceof BatchgateError && e.status === 402);
});

test("a stream yields each event whole across chunk boundaries, then its cost", async () => {
  serve((url) => {
    assert.equal(url.search, "?alt=sse");
    return new Response(
      chunked(['data: {"n":1}\r\n', '\r\ndata: {"n"', ':2}\n\n: batchgate-co', 'st {"standard":3,"charged":3}\n\n']),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  const s = generateStream(new Http("http://x", "t"), "m", {});
  const seen = [];
  for await (const chunk of s.chunks) seen.push(chunk.n);
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual(await s.cost, { standard: 3, charged: 3 });
});

test("leaving a stream early closes it, and its cost is then unknown", async () => {
  let cancelled = false;
    // Gemini is still answering: the first event, then nothing yet.
  let sent = false;
  const body = new ReadableStream({
        pull(c) {
      if (sent) return new Promise(() => {});
      sent = true;
      c.enqueue(new TextEncoder().encode('data: {"n":1}\n\n'));
    },
    cancel: () => (cancelled = true),
  });
  serve(() => new Response(body));
  const s = generateStream(new Http("http://x", "t"), "m", {});
  for await (const chunk of s.chunks) {
    assert.equal(chunk.n, 1);
        break;
  }
  await new Promise((r) => setTimeout(r, 20)); // the cancel crosses the decoder's pipe
  assert.ok(cancelled, "the connection was closed");
  assert.equal(await s.cost, null);
});
