// `POST /v1/generate`: one request answered now at the standard price,
// whole or streamed as server-sent events. The cost rides in the
// `batchgate-cost` header, or, streamed, in a last `: batchgate-cost` comment.

import { BatchgateError, networkError } from "./errors.js";
import { jsonOf } from "./http.js";

function costOf(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export async function generate(http, model, request, options) {
  const resp = await http.fetch("POST", "/v1/generate", { body: { model, request }, signal: options?.signal });
  const response = await jsonOf(resp);
  return {
    response,
    cost: costOf(resp.headers.get("batchgate-cost")),
    callId: resp.headers.get("batchgate-call-id"),
  };
}

/** The events of an SSE body, as they arrive: `{data}` for `data:` lines, `{comment}` for `:` lines. */
async function* events(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if (data.length) yield { data: data.join("\n") };
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        } else if (line.startsWith(":")) {
          yield { comment: line.slice(1).trim() };
        }
      }
    }
    if (data.length) yield { data: data.join("\n") };
  } catch (e) {
    throw signal?.aborted ? e : networkError(e);
    } finally {
    // Leaving early (a break, an abort) closes the connection; the call is still charged in full.
    await reader.cancel().catch(() => {});
  }
}

/** `{chunks, cost}`: Gemini's streamed answers as they arrive, and the call's
 *  cost once the stream has ended. */
export function generateStream(http, model, request, options) {
  let settle;
  const cost = new Promise((resolve) => (settle = resolve));
  async function* chunks() {
    const resp = await http.fetch("POST", "/v1/generate?alt=sse", {
      body: { model, request },
      signal: options?.signal,
    });
    if (!resp.ok) await jsonOf(resp); // throws the API's error
    let seen = null;
    try {
      for await (const event of events(resp.body, options?.signal)) {
        if (event.comment?.startsWith("batchgate-cost ")) {
          seen = costOf(event.comment.slice("batchgate-cost ".length));
        } else if (event.data !== undefined) {
          const chunk = JSON.parse(event.data);
          if (chunk?.error) throw new BatchgateError(chunk.error.message ?? "Gemini broke off", "gemini_error", 502);
          yield chunk;
        }
      }
    } finally {
      settle(seen);
    }
  }
  return { chunks: chunks(), cost };
}
