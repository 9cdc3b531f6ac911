// The package's public API, written by hand beside the wasm exports it
// describes (sdk/src/, core's client compiled to wasm). The shapes the server serializes — jobs, quotes, usage,
// costs, ledger kinds — are generated from core's Rust types into
// batchgate.d.ts when the wasm is built, so they cannot drift from the worker.
// batchgate.d.ts also declares the wasm's own class, which wasm-bindgen gives
// a `[Symbol.dispose]()` (explicit resource management).
/// <reference lib="esnext.disposable" />
import type { Cost, Counts, JobState, JobView, Kind, Lane, Mode, Quote } from "./batchgate.js";

export type { Cost, Counts, JobError, JobState, JobView, Kind, Lane, Mode, Quote, ShardSpec, Tokens, Totals, Usage } from "./batchgate.js";

/** A Gemini `GenerateContentRequest` (https://ai.google.dev/api/generate-content). */
export interface GenerateContentRequest {
  contents: Content[];
  systemInstruction?: Content;
  generationConfig?: { maxOutputTokens?: number; [field: string]: unknown };
  [field: string]: unknown;
}
export interface Content { role?: string; parts: Part[] }
export type Part =
  | { text: string }
  | { inlineData: { mimeType: string; data: string } }
  | { fileData: { mimeType?: string; fileUri: string } }
  | Record<string, unknown>;

/** One request of a job; a missing `key` is assigned by the server. */
export interface RequestLine { key?: string; request: GenerateContentRequest }

/** A token, or a (possibly async) function the SDK calls again after a 401. */
export type TokenSource = string | (() => string | Promise<string>);

export interface BatchgateOptions {
  endpoint: string;
  token: TokenSource;
  /** The operator's `PRICES` table, when it is not Google's default. */
  prices?: Record<string, unknown>;
}
export interface EstimateInput { model: string; requests: RequestLine[] }
/** Where a large submit's input stands: `received` of `size` bytes sent. */
export interface SubmitProgress { inputId: string; received: number; size: number }
export interface SubmitInput {
  model: string;
  /** The requests: an array, a `Blob`/`File` of NDJSON (one `{key?, request}`
   *  per line), or an iterable or async iterable of requests. Read once,
   *  checked and quoted locally, then sent inline when small or through
   *  `/v1/inputs` in resumable parts of whole lines when large. */
  requests: RequestLine[] | Blob | Iterable<RequestLine> | AsyncIterable<RequestLine>;
  /** A large submit's progress, after each part. */
  onProgress?: (progress: SubmitProgress) => void;
  /** Aborts a large submit between parts (code `aborted`). */
  signal?: AbortSignal;
  /** Inline up to this many NDJSON bytes (4 MiB); larger jobs go in parts. */
  inlineBytes?: number;
  /** A part's most bytes (32 MiB; the worker takes up to `MAX_INPUT_PART_BYTES`). */
  partBytes?: number;
  displayName?: string;
  metadata?: Record<string, unknown>;
  /** Sent as `Idempotency-Key`; generated when absent. */
  idempotencyKey?: string;
    /** POSTed the final, charged job, signed with the account's webhook secret (Standard Webhooks). */
  webhook?: { url: string };
  /** `batch` (default: half price, results within 24 h), `realtime` (standard
   *  price, now) or `auto` (realtime for small jobs; the view says which and why). */
  mode?: Mode;
  /** Run realtime what Gemini will not take as a batch (refused, or a long
   *  wait for quota). Reserved at the standard price from the start. */
  fallback?: "realtime";
}
/** What a realtime call cost, in micro-credits (`standard` = `charged` in this lane). */
export interface GenerateCost { standard: number; charged: number }
/** A Gemini `GenerateContentResponse`. */
export interface GenerateContentResponse {
  candidates?: { content?: Content; finishReason?: string; [field: string]: unknown }[];
  usageMetadata?: Record<string, number | unknown>;
  [field: string]: unknown;
}
export interface GenerateResult {
  response: GenerateContentResponse;
  cost: GenerateCost | null;
  /** The ledger entry's job id (`gen_…`). */
  callId: string | null;
}
export interface GenerateStream {
  /** Gemini's answer in chunks as they arrive (leaving early closes the stream; the call is still charged in full). */
  chunks: AsyncIterable<GenerateContentResponse>;
  /** The call's cost, once `chunks` has been read to its end or left (null if
   *  it broke off first). The call is made when `chunks` is first read. */
  cost: Promise<GenerateCost | null>;
}
export interface GenerateOptions { signal?: AbortSignal }
export interface ListOptions { state?: JobState | JobState[]; limit?: number; cursor?: string }
/** A job as `list` shows it; `job(id)` has the whole view. */
export interface JobSummary {
  id: string;
  state: JobState;
  model: string;
  displayName?: string;
    createdAt: string;
  updatedAt: string;
  lane?: Lane;
  requestCount?: number;
  counts?: Counts;
  cost?: Cost;
}
export interface JobPage { jobs: JobSummary[]; nextCursor?: string | null }
export interface WatchOptions { intervalMs?: number }
export interface WaitOptions extends WatchOptions {
  onProgress?: (job: JobView) => void;
  signal?: AbortSignal;
}
export interface ResultsOptions { only?: "failed" }
/** A result line: Gemini's `response`, or the `error` that request ended with. */
export interface ResultLine {
  key: string;
  response?: Record<string, unknown>;
  error?: { code?: number; message?: string; status?: string; [field: string]: unknown };
}
/** Micro-credits (1 credit = 1,000,000). */
export interface Account {
  account: string;
  unit: "microcredits";
  balance: number;
  reserved: number;
  granted: number;
  spent: number;
  saved: number;
  openJobs: number;
}
/** One step or change in a job's life (`kind`: submitted, uploaded, batch_created, polled, state, ingested, charged, …). */
export interface TimelineEvent { seq: number; at: string; kind: string; detail: Record<string, unknown> }
export interface EventOptions { after?: number; limit?: number }
export interface EventPage { events: TimelineEvent[]; nextCursor?: number | null }
export interface LedgerOptions { limit?: number; cursor?: string }
export interface LedgerRow {
  seq: number;
  atMs: number;
  kind: Kind;
  job: string;
  event: string;
  amount: number;
  balanceDelta: number;
  heldDelta: number;
  note: string;
}
export interface LedgerPage { entries: LedgerRow[]; nextCursor?: string | null }
export interface UploadProgress { uploadId: string; received: number; size: number }
export interface UploadOptions {
  mimeType?: string;
  displayName?: string;
  /** Resume this session (from an earlier `onProgress`) instead of opening one. */
  uploadId?: string;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}
/** An uploaded file; reference it as `fileData.fileUri`. */
export interface UploadedFile {
  name: string;
  uri: string;
  mimeType: string;
  sizeBytes: number;
  displayName?: string | null;
  createdAt: string;
  expiresAt: string;
}

/** Every failure of the SDK: an API error (`status` > 0, `code` from the API:
 *  e.g. `not_found`, `upload_ended`, `input_ended`, `input_used`), a network
 *  error (`status` 0, `code` "network_error"), or the client's own: a local
 *  refusal (`invalid_argument`, `invalid_requests`, `insufficient_credits`),
 *  `aborted`, `token_error` (the token function failed), `invalid_result` (an
 *  unreadable result line), `invalid_answer` (an answer that is not JSON),
 *  `http_error` (a non-2xx answer that is not the API's, e.g. a proxy's page),
 *  `gemini_error` (a stream Gemini broke off), `session_ended` (an upload or
 *  input found expired when resumed), `client_error` (a bug: please report it). */
export declare class BatchgateError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: unknown;
  /** The request never got an answer (offline, refused, dropped). */
  readonly isNetworkError: boolean;
}

/** The job's views as they change (`for await`); it ends after the view in
 *  which the job ended and was charged. */
export interface JobWatch extends AsyncIterableIterator<JobView> {
  next(): Promise<IteratorResult<JobView, undefined>>;
  /** Stop watching (what `break` in a `for await` calls); a pending `next` ends. */
  return(): Promise<IteratorResult<JobView, undefined>>;
}

export declare class Batchgate {
  /** `token` is a string or a (possibly async) function returning one, called
   *  again after a 401; `prices` is the operator's `PRICES` table when it is not
   *  Google's default. Throws `invalid_argument` naming what is wrong. */
  constructor(options: BatchgateOptions);
  /** A local quote `{tokens, standard, batch, savings}` in micro-credits,
   *  computed by the worker's own rules. Throws `invalid_requests` naming the
   *  first bad request. */
  estimate(input: EstimateInput): Quote;
  /** The models the price table lists (what `estimate` and `submit` accept). */
  models(): string[];
  /** What one result line cost, from its `usageMetadata`, counted as the server
   *  counts it (`batch` for this line alone; a job's charge rounds once over all
   *  its lines). An error line costs nothing. */
  resultCost(model: string, line: ResultLine): Quote;
  /** Checks the balance against the local quote first (a 402
   *  `insufficient_credits` without a round trip), then submits with an
   *  `Idempotency-Key` (generated when absent): a retried call with the same
   *  key returns the same job. */
    submit(input: SubmitInput): Promise<JobView>;
  /** One request answered now (`POST /v1/generate`) at the standard price: 402
   *  when the balance cannot cover its quote, Gemini's refusals with their status. */
  generate(model: string, request: GenerateContentRequest, options?: GenerateOptions): Promise<GenerateResult>;
  /** The same, streamed as Gemini answers (server-sent events). */
  generateStream(model: string, request: GenerateContentRequest, options?: GenerateOptions): GenerateStream;
  /** The job's current view. */
  job(id: string): Promise<JobView>;
  /** `{jobs, nextCursor}`, newest first. */
  list(options?: ListOptions): Promise<JobPage>;
  /** Cancel the job; the results Gemini delivered so far are kept (and charged). */
  cancel(id: string): Promise<JobView>;
  /** A new job of the lines of an ended job that failed or that Gemini returned
   *  nothing for, linked by `retryOf`; the same child on every call. */
  retryFailed(id: string): Promise<JobView>;
  /** Delete the job and its stored results (a running job is cancelled and settled first). */
  deleteJob(id: string): Promise<unknown>;
    /** Media part `n` (from 0) of `key`'s answer: an image model's picture, a TTS model's audio. */
  resultMedia(id: string, key: string, n: number): Promise<Blob>;
  /** One result line `{key, response}` or `{key, error}`. */
  result(id: string, key: string): Promise<ResultLine>;
  /** `{account, balance, reserved, granted, spent, saved, openJobs}` in micro-credits. */
  account(): Promise<Account>;
  /** `{entries, nextCursor}`, newest first. */
  ledger(options?: LedgerOptions): Promise<LedgerPage>;
  /** The job's timeline, oldest first. */
  events(id: string, options?: EventOptions): Promise<EventPage>;
  /** The job's views as they change: over a WebSocket where the platform has
   *  one (reconnecting by itself), by `ETag` polling every `intervalMs` (1000)
   *  otherwise. */
  watch(id: string, options?: WatchOptions): JobWatch;
  /** Resolves to the final (charged) job; `onProgress(job)` gets every change;
   *  an aborted `signal` rejects at once with code `aborted`. */
  wait(id: string, options?: WaitOptions): Promise<JobView>;
  /** The job's result lines, streamed page by page (`{only: "failed"}` for failures). */
  results(id: string, options?: ResultsOptions): AsyncGenerator<ResultLine, void, undefined>;
  /** A `Blob` or `File` into the Gemini Files API through a resumable session,
   *  in chunks the server sizes; a dropped connection is retried with backoff
   *  from what the server holds. `onProgress({uploadId, received, size})` after
   *  each chunk: keep `uploadId` to resume in a later session. */
  upload(blob: Blob, options?: UploadOptions): Promise<UploadedFile>;
}

/** The SDK's version, as published. */
export declare function version(): string;
