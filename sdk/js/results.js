// `results(jobId)`: the job's result lines as an async iterator, streamed:
// each page of NDJSON is read as it arrives and split into lines, so a large
// result set never sits in memory whole.

import { BatchgateError, networkError } from "./errors.js";
import { enc, jsonOf } from "./http.js";

export async function* results(http, id, { only } = {}) {
  const base = `/v1/jobs/${enc(id)}/results?limit=1000${only === "failed" ? "&only=failed" : ""}`;
  let cursor = null;
  do {
    const resp = await http.fetch("GET", cursor ? `${base}&cursor=${enc(cursor)}` : base);
    if (!resp.ok) await jsonOf(resp); // throws the API's error
    cursor = resp.headers.get("batchgate-next-cursor");
    yield* lines(resp.body);
  } while (cursor);
}

function parse(line) {
  try {
    return JSON.parse(line);
  } catch (e) {
    throw new BatchgateError(`an unreadable result line: ${e.message}`, "invalid_result", 0, { line });
  }
}

async function* lines(body) {
  if (!body) return;
  // The body's own reader (not a piped TextDecoderStream): cancelling it
  // cancels the download itself, at once.
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let partial = "";
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw networkError(e);
      }
      const text = chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      // Only the new text is searched: a long line over many chunks stays linear.
      const end = text.lastIndexOf("\n");
      if (end < 0) {
        partial += text;
      } else {
        const complete = partial + text.slice(0, end);
        partial = text.slice(end + 1);
        for (const line of complete.split("\n")) if (line.trim()) yield parse(line);
      }
      if (chunk.done) break;
    }
    if (partial.trim()) yield parse(partial);
  } finally {
    await reader.cancel().catch(() => {}); // a `break` leaves the rest of the page unread
  }
}
