// Every failure the SDK reports is a BatchgateError: the API's own errors
// (`status` > 0, `code` from the API), network failures (`network_error`,
// status 0) and the SDK's local refusals (`invalid_argument`, `aborted`, …).

export class BatchgateError extends Error {
  constructor(message, code, status = 0, details = undefined, cause = undefined) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "BatchgateError";
    this.code = code;
    this.status = status;
    this.details = details;
  }

  /** The request never got an answer (offline, refused, dropped). */
  get isNetworkError() {
    return this.code === "network_error";
  }
}

export const invalidArgument = (message) => new BatchgateError(message, "invalid_argument");

export const aborted = (what) => new BatchgateError(`${what} was aborted`, "aborted");

export const networkError = (cause) =>
  new BatchgateError(`the request got no answer: ${cause?.message ?? cause}`, "network_error", 0, undefined, cause);
