// The public surface: the wasm exports, the error class they throw, and the
// one line of glue JavaScript needs to `for await` over the iterators.
//
// Nothing here may call into the wasm while this module evaluates: in browsers
// the wasm is still being fetched then (a sibling module's top-level await
// does not hold this one back), so `BatchgateError` defers to the real class.
import { Batchgate, JobWatch, ResultLines, version, errorClass } from "./batchgate.js";
for (const Iter of [JobWatch, ResultLines]) Iter.prototype[Symbol.asyncIterator] = function () { return this; };
export { Batchgate, JobWatch, ResultLines, version };

/** The class of every error the SDK throws: `e instanceof BatchgateError`. */
export class BatchgateError extends Error {
  static [Symbol.hasInstance](value) {
    return value instanceof errorClass();
  }
}
