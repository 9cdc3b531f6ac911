// The packed `batchgate` package, installed into a fresh project, against a
// running worker and the Gemini emulator. Run by tests/tests/sdk_e2e.rs, which
// starts both and passes BATCHGATE_URL, BATCHGATE_TOKEN and POOR_TOKEN.
import assert from "node:assert/strict";
import { Batchgate, BatchgateError, version } from "batchgate";

const endpoint = process.env.BATCHGATE_URL;
let tokenCalls = 0;
const bg = new Batchgate({
  endpoint,
  token: async () => {
    tokenCalls += 1;
    return process.env.BATCHGATE_TOKEN;
  },
});
assert.match(version(), /^\d+\.\d+\.\d+$/);

const requests = Array.from({ length: 5 }, (_, i) => ({
  key: `q${i}`,
  request: { contents: [{ parts: [{ text: `question ${i}: what is ${i} squared?` }] }] },
}));
const model = "gemini-2.5-flash";

// A local quote, then the server's: the same figures.
const quote = bg.estimate({ model, requests });
assert.ok(quote.batch > 0 && quote.standard >= 2 * quote.batch - 1 && quote.savings === quote.standard - quote.batch);
assert.throws(() => bg.estimate({ model, requests: [{ request: {} }] }), (e) => e instanceof BatchgateError && /line 1/.test(e.message));

const before = await bg.account();
const job = await bg.submit({ model, requests, displayName: "sdk e2e", idempotencyKey: "sdk-e2e-1" });
assert.equal(job.cost.reserved, quote.batch, "the local quote is the server's reservation");
const again = await bg.submit({ model, requests, idempotencyKey: "sdk-e2e-1" });
assert.equal(again.id, job.id, "the same idempotency key is the same job");

// wait() reports progress and resolves once the job ended and was charged.
const seen = [];
const done = await bg.wait(job.id, { onProgress: (j) => seen.push(j.state), intervalMs: 100 });
assert.equal(done.state, "succeeded", JSON.stringify(done));
assert.equal(typeof done.cost.charged, "number");
assert.ok(seen.length >= 1 && seen.at(-1) === "succeeded", `progress: ${seen}`);
assert.equal(done.counts.succeeded, 5);
for (const r of requests) {
  const line = await bg.result(job.id, r.key);
  assert.equal(line.key, r.key);
  assert.ok(line.response.usageMetadata.totalTokenCount > 0);
}
let streamed = 0;
for await (const line of bg.results(job.id)) {
  assert.ok(requests.some((r) => r.key === line.key) && line.response, JSON.stringify(line));
  streamed += 1;
}
assert.equal(streamed, 5);
for await (const line of bg.results(job.id, { only: "failed" })) assert.fail(`no line failed: ${JSON.stringify(line)}`);

// watch(): every change, in order, ending with the charged job (a WebSocket
// where the platform has one, ETag polling where it does not).
const second = await bg.submit({ model, requests: requests.slice(0, 2) });
const states = [];
for await (const view of bg.watch(second.id, { intervalMs: 100 })) states.push(view.state);
const order = ["accepted", "uploading", "pending", "running", "ingesting", "succeeded"];
assert.ok(states.every((st, i) => i === 0 || order.indexOf(states[i - 1]) <= order.indexOf(st)), `states: ${states}`);
assert.equal(states.at(-1), "succeeded");
const secondDone = await bg.job(second.id);
// An aborted wait rejects at once.
const controller = new AbortController();
controller.abort();
await assert.rejects(bg.wait(second.id, { signal: controller.signal }), (e) => e instanceof BatchgateError && e.code === "aborted");

const after = await bg.account();
assert.equal(
  before.balance - after.balance,
  done.cost.charged + secondDone.cost.charged,
  "the balance dropped by exactly the charges",
);
const timeline = await bg.events(job.id, { limit: 1000 });
const kinds = timeline.events.map((e) => e.kind);
assert.ok(kinds[0] === "submitted" && kinds.includes("charged"), `timeline: ${kinds}`);
const listed = await bg.list({ limit: 5 });
assert.equal(listed.jobs[1].id, job.id);
const ledger = await bg.ledger({ limit: 10 });
assert.deepEqual(ledger.entries.slice(0, 2).map((e) => e.kind), ["release", "settle"]);
assert.equal(tokenCalls, 1, "the token function is called once and cached");

// upload(): resumable, in server-sized chunks, with progress; interrupted
// (an AbortSignal after the first chunk) and resumed by its uploadId.
const bytes = new Uint8Array(20 * 1024 * 1024).map((_, i) => (i * 31 + (i >> 12)) % 251);
const blob = new Blob([bytes], { type: "application/pdf" });
const stop = new AbortController();
let uploadId;
const progress = [];
await assert.rejects(
  bg.upload(blob, {
    displayName: "report.pdf",
    signal: stop.signal,
    onProgress: (p) => {
      uploadId = p.uploadId;
      progress.push(p.received);
      if (p.received > 0) stop.abort();
    },
  }),
  (e) => e instanceof BatchgateError && e.code === "aborted",
);
assert.ok(uploadId && progress.at(-1) > 0, `progress: ${progress}`);
const file = await bg.upload(blob, { uploadId, onProgress: (p) => progress.push(p.received) });
assert.equal(file.sizeBytes, blob.size);
assert.equal(file.mimeType, "application/pdf");
assert.ok(progress.includes(blob.size), `progress: ${progress}`);
// A connection lost mid-upload costs a retry, not the upload: once before a
// chunk reached the server, once after the last one did (its answer lost).
const realFetch = globalThis.fetch;
let puts = 0;
globalThis.fetch = async (url, init) => {
  if (init?.method !== "PUT") return realFetch(url, init);
  puts += 1;
  if (puts === 2) throw new TypeError("network connection lost");
  const resp = await realFetch(url, init);
  if (puts === 4) {
    await resp.arrayBuffer();
    throw new TypeError("network connection lost");
  }
  return resp;
};
const lossy = [];
const resumed = await bg.upload(blob, { displayName: "lossy.pdf", onProgress: (p) => lossy.push(p.received) });
globalThis.fetch = realFetch;
assert.equal(resumed.sizeBytes, blob.size);
assert.notEqual(resumed.name, file.name, "a new upload is a new file");
assert.equal(puts, 4, "three chunks, one of them sent twice");
assert.deepEqual(lossy, [0, 8 << 20, 8 << 20, 16 << 20, blob.size], `progress (a retried chunk twice): ${lossy}`);

const withPdf = await bg.submit({
  model,
  requests: [{ key: "pdf", request: { contents: [{ parts: [{ fileData: { mimeType: "application/pdf", fileUri: file.uri } }, { text: "Summarise." }] }] } }],
});
const pdfDone = await bg.wait(withPdf.id, { intervalMs: 100 });
assert.equal(pdfDone.state, "succeeded");

// retryFailed(): a child job of the lines that failed ("flaky" always fails here).
const mixed = await bg.submit({ model, requests: [requests[0], { key: "flaky", request: requests[1].request }] });
const mixedDone = await bg.wait(mixed.id, { intervalMs: 100 });
assert.deepEqual([mixedDone.counts.succeeded, mixedDone.counts.failed], [1, 1]);
const retried = await bg.retryFailed(mixed.id);
assert.equal(retried.retryOf, mixed.id);
assert.equal(retried.requestCount, 1);
assert.equal((await bg.retryFailed(mixed.id)).id, retried.id, "one child per job");
const retriedDone = await bg.wait(retried.id, { intervalMs: 100 });
const retriedKeys = [];
for await (const line of bg.results(retried.id)) retriedKeys.push(line.key);
assert.deepEqual(retriedKeys, ["flaky"], JSON.stringify(retriedDone));

// A large submit: requests as an async iterable, sent through /v1/inputs in
// parts of whole lines (a tiny inline limit stands in for a large job).
async function* produce(n) {
  for (let i = 0; i < n; i++) yield { key: `big${String(i).padStart(2, "0")}`, request: requests[0].request };
}
const parts = [];
const big = await bg.submit({ model, requests: produce(12), inlineBytes: 64, partBytes: 600, onProgress: (p) => parts.push(p) });
assert.ok(parts.length >= 3 && parts[0].inputId && parts.at(-1).received === parts.at(-1).size, JSON.stringify(parts));
const bigDone = await bg.wait(big.id, { intervalMs: 100 });
assert.equal(bigDone.counts.succeeded, 12, JSON.stringify(bigDone));
// The same requests as a File of NDJSON.
const ndjson = new Blob([Array.from({ length: 3 }, (_, i) => JSON.stringify({ key: `f${i}`, request: requests[0].request })).join("\n")]);
const fromFile = await bg.submit({ model, requests: ndjson });
assert.equal(fromFile.requestCount, 3);
await assert.rejects(bg.submit({ model, requests: new Blob(['{"key": "x", "request": {}}\n']) }), (e) => e.code === "invalid_requests" && /line 1/.test(e.message));

// The realtime lane: a job answered now at the standard price, and single calls.
const realtime = await bg.submit({ model, requests, mode: "realtime" });
assert.equal(realtime.lane, "realtime");
assert.equal(realtime.cost.reserved, quote.standard, "realtime reserves the standard price");
const realtimeDone = await bg.wait(realtime.id, { intervalMs: 100 });
assert.equal(realtimeDone.cost.charged, realtimeDone.cost.standard, JSON.stringify(realtimeDone));
const rows = await bg.list({ state: ["succeeded", "failed"], limit: 1 });
assert.equal(rows.jobs[0].lane, "realtime");
const single = await bg.generate(model, requests[0].request);
assert.ok(single.response.candidates[0].content.parts[0].text.length > 0);
assert.ok(single.cost.charged > 0 && single.cost.charged === single.cost.standard && single.callId.startsWith("gen_"));
const live = bg.generateStream(model, requests[0].request);
let text = "";
for await (const chunk of live.chunks) text += chunk.candidates[0].content.parts[0].text ?? "";
assert.equal(text, single.response.candidates[0].content.parts[0].text, "the stream is the same answer");
assert.deepEqual(await live.cost, single.cost);
await assert.rejects(bg.generate(model, { contents: [] }), (e) => e.status === 400 && e.code === "invalid_request");

// Errors: the API's, by code; the local balance check; the network's.
await assert.rejects(bg.job("0".repeat(64)), (e) => e instanceof BatchgateError && e.status === 404 && e.code === "not_found");
const poor = new Batchgate({ endpoint, token: process.env.POOR_TOKEN });
await assert.rejects(poor.submit({ model, requests }), (e) => e.status === 402 && e.code === "insufficient_credits" && e.details.quote.batch === quote.batch);
const forged = new Batchgate({ endpoint, token: "not.a.jwt" });
await assert.rejects(forged.account(), (e) => e.status === 401 && e.code === "malformed_token" && !e.isNetworkError);
const offline = new Batchgate({ endpoint: "http://127.0.0.1:9", token: "t" });
await assert.rejects(offline.account(), (e) => e instanceof BatchgateError && e.isNetworkError && e.code === "network_error");
assert.throws(() => new Batchgate({ token: "t" }), (e) => e.code === "invalid_argument");

console.log(`sdk e2e: ok (${typeof WebSocket === "function" ? "websocket" : "polling"})`);
