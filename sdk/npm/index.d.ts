export { Batchgate, version } from "./batchgate.js";

/** Every failure of the SDK: an API error (`status` > 0, `code` from the API)
 *  or a network error (`status` 0, `code` "network_error"). */
export declare class BatchgateError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: unknown;
  readonly isNetworkError: boolean;
}
