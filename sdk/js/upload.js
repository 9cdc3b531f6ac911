// `upload(blob)`: a file into the Gemini Files API through a resumable session
// (`/v1/uploads`), in chunks the server sizes (multiples of its granularity, at
// most its per-request cap). A dropped connection is not the end: the SDK asks
// the session what it holds and resumes from there, with backoff, so a flaky
// network costs time, not the upload.

import { BatchgateError, aborted } from "./errors.js";
import { enc, jsonOf, sleep } from "./http.js";

/** Network failures in a row before `upload` gives up. */
const MAX_RETRIES = 8;

export async function upload(http, blob, { mimeType, displayName, uploadId, onProgress, signal } = {}) {
  const path = (id) => `/v1/uploads/${enc(id)}`;
  let s = uploadId
    ? await http.call("GET", path(uploadId))
    : await http.call("POST", "/v1/uploads", { size: blob.size, mimeType: mimeType || blob.type, displayName });
  const { id, size } = s;
  const granularity = Math.max(1, s.chunkGranularity ?? 8 << 20);
  const chunk = Math.max(1, Math.floor((s.maxChunkBytes ?? 64 << 20) / granularity)) * granularity;
  let failures = 0;
  while (s.state === "open") {
    const received = s.received ?? 0;
    onProgress?.({ uploadId: id, received, size });
    // Checked after the progress callback, so aborting from it sends nothing more.
    if (signal?.aborted) throw aborted("the upload");
    const end = Math.min(received + chunk, size);
    const headers = { "content-range": `bytes ${received}-${Math.max(end - 1, 0)}/${size}` };
    try {
      s = await jsonOf(await http.fetch("PUT", path(id), { body: blob.slice(received, end), headers, signal }));
      failures = 0;
    } catch (e) {
      if (e.code === "wrong_offset") {
        // Another attempt already moved the session: continue from where it is.
        s = await http.call("GET", path(id));
      } else if (e.code === "network_error" && ++failures <= MAX_RETRIES) {
        // Back off, then ask the session what it holds (once its broken chunk
        // has settled) and go on from there.
        await sleep(250 * 2 ** Math.min(failures, 7));
        const now = await http.call("GET", path(id)).catch(() => null);
        if (now && now.sending !== true) s = now;
      } else {
        throw e;
      }
    }
  }
  onProgress?.({ uploadId: id, received: size, size });
  if (s.state === "done") return s.file;
  throw new BatchgateError("the upload session expired", "upload_expired", 410, s);
}
