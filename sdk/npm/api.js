// The public surface: the wasm exports, plus the error class they throw.
import { Batchgate, version, errorClass } from "./batchgate.js";
export { Batchgate, version };
export const BatchgateError = errorClass();
