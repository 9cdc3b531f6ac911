// The public surface: the wasm exports, the error class they throw, and the
// one line of glue JavaScript needs to `for await` over the iterators.
import { Batchgate, JobWatch, ResultLines, version, errorClass } from "./batchgate.js";
for (const Iter of [JobWatch, ResultLines]) Iter.prototype[Symbol.asyncIterator] = function () { return this; };
export { Batchgate, version };
export const BatchgateError = errorClass();
