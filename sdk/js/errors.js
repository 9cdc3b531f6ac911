// Every failure the SDK reports is a BatchgateError: the API's own errors
// (`status` > 0, `code` from the API), network failures (`network_error`,
// status 0) and the SDK's local refusals (`invalid_argument`, `aborted`, …).
// The wasm constructs them (core decides code, message and status).

export class BatchgateError extends Error {
  constructor(message, code, status = 0, details = undefined) {
    super(message);
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
