//! TypeScript declarations for what crosses the JS boundary as plain objects.
//! The job, quote, usage and ledger shapes are generated from `core`'s types
//! (tsify, feature `ts`); the shapes below are the SDK's own options and the
//! worker's envelopes around them. wasm-bindgen appends all of it to the
//! package's `.d.ts` and the method signatures refer to it by name.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
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
export interface SubmitInput extends EstimateInput {
    displayName?: string;
    metadata?: Record<string, unknown>;
    /** Sent as `Idempotency-Key`; generated when absent. */
    idempotencyKey?: string;
    /** POSTed the final, charged job, signed with the account's webhook secret (Standard Webhooks). */
    webhook?: { url: string };
}
export interface ListOptions { state?: JobState; limit?: number; cursor?: string }
/** A job as `list` shows it; `job(id)` has the whole view. */
export interface JobSummary {
    id: string;
    state: JobState;
    model: string;
    displayName?: string;
    createdAt: string;
    updatedAt: string;
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
"#;
