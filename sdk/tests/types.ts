// Compiled with `tsc --strict --noEmit` against the installed package: the
// declarations must describe the API as e2e.mjs uses it, and misuse must fail
// (each @ts-expect-error line is an error tsc has to find).
import { Batchgate, BatchgateError, type JobView, type Quote, type ResultLine, type UploadedFile } from "batchgate";

export async function use(blob: Blob): Promise<number> {
  const bg = new Batchgate({ endpoint: "http://localhost:8787", token: async () => "t" });
  const requests = [{ key: "a", request: { contents: [{ parts: [{ text: "hi" }] }] } }];
  const quote: Quote = bg.estimate({ model: "gemini-2.5-flash", requests });
  const job: JobView = await bg.submit({ model: "gemini-2.5-flash", requests, displayName: "x" });
  for await (const view of bg.watch(job.id)) {
    const done: number = view.counts.succeeded + view.counts.failed;
    if (view.state === "succeeded") return done;
  }
  const final = await bg.wait(job.id, { onProgress: (j) => j.requestCount, signal: AbortSignal.timeout(1000) });
  for await (const line of bg.results(final.id, { only: "failed" })) {
    const l: ResultLine = line;
    if (l.error) break;
  }
  const file: UploadedFile = await bg.upload(blob, { onProgress: (p) => p.received / p.size });
  const child: JobView = await bg.retryFailed(job.id);
  if (child.retryOf !== job.id) return -1;
    const page = await bg.list({ state: ["running", "pending"], limit: 5 });
  const lane: "batch" | "realtime" | undefined = page.jobs[0]?.lane;
  const now = await bg.submit({ model: "gemini-2.5-flash", requests, mode: "auto", fallback: "realtime" });
  if (now.lane === "realtime" && lane) return now.laneReason?.length ?? 0;
  const answer = await bg.generate("gemini-2.5-flash", { contents: [{ parts: [{ text: "hi" }] }] });
  const charged: number = answer.cost?.charged ?? 0;
  const stream = bg.generateStream("gemini-2.5-flash", { contents: [] }, { signal: AbortSignal.timeout(1000) });
  for await (const chunk of stream.chunks) {
    if (chunk.candidates?.[0]?.finishReason) break;
  }
  if (((await stream.cost)?.standard ?? 0) > charged) return 0;
  // Large submits: a File of NDJSON, or requests as they are produced.
  const big = await bg.submit({ model: "gemini-2.5-flash", requests: blob, onProgress: (p) => p.received / p.size });
  async function* produce() {
    yield { key: "b", request: { contents: [{ parts: [{ text: "hi" }] }] } };
  }
  const streamed: JobView = await bg.submit({ model: "gemini-2.5-flash", requests: produce(), partBytes: 1 << 20 });
  if (big.id === streamed.id) return 1;
  const account = await bg.account();
  const ledger = await bg.ledger();
  const steps = await bg.events(job.id, { limit: 10 });
  if (steps.events[0]?.kind === "submitted") return steps.events.length;
  try {
    await bg.cancel(page.jobs[0]?.id ?? file.name);
  } catch (e) {
    if (e instanceof BatchgateError && e.isNetworkError) return e.status;
  }
  // @ts-expect-error: states are a closed set
  await bg.list({ state: "done" });
    // @ts-expect-error: modes are a closed set
  await bg.submit({ model: "m", requests, mode: "fast" });
  // @ts-expect-error: requests need a request
  bg.estimate({ model: "m", requests: [{ key: "a" }] });
  // @ts-expect-error: a quote is of an array of requests
  bg.estimate({ model: "m", requests: blob });
  // @ts-expect-error: the endpoint is required
  new Batchgate({ token: "t" });
  return quote.batch + account.balance + (ledger.entries[0]?.amount ?? 0);
}
