// wasm-bindgen gives each class a `[Symbol.dispose]()` (explicit resource management).
/// <reference lib="esnext.disposable" />
import type { JobView, ResultLine } from "./batchgate.js";

export { Batchgate, JobWatch, ResultLines, version } from "./batchgate.js";
// The shapes of everything the API takes and returns (generated with the wasm).
export type {
  Account, BatchgateOptions, Content, Cost, Counts, EstimateInput, EventOptions, EventPage, GenerateContentRequest, JobError, JobPage,
  JobState, JobSummary, JobView, Kind, LedgerOptions, LedgerPage, LedgerRow, ListOptions, Part, Quote, RequestLine,
  ResultLine, ResultsOptions, SubmitInput, TimelineEvent, TokenSource, Tokens, UploadedFile, UploadOptions, UploadProgress,
  Usage, WaitOptions, WatchOptions,
} from "./batchgate.js";

// api.js makes both iterators `for await`-able.
declare module "./batchgate.js" {
  interface JobWatch {
    [Symbol.asyncIterator](): AsyncIterator<JobView, undefined>;
  }
  interface ResultLines {
    [Symbol.asyncIterator](): AsyncIterator<ResultLine, undefined>;
  }
}

/** Every failure of the SDK: an API error (`status` > 0, `code` from the API)
 *  or a network error (`status` 0, `code` "network_error"). */
export declare class BatchgateError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: unknown;
  readonly isNetworkError: boolean;
}
