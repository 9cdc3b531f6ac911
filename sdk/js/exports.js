// What both entries export, once the wasm is instantiated. The wasm's
// iterators (watch, results, a stream's chunks) have `next` and `return`;
// this makes them usable in `for await`, which looks for Symbol.asyncIterator.
import { Batchgate, Chunks, JobWatch, ResultLines, errorClass, version } from "batchgate-wasm";

for (const Iterator of [JobWatch, ResultLines, Chunks]) {
  Iterator.prototype[Symbol.asyncIterator] = function () {
    return this;
  };
}

export const BatchgateError = errorClass();
export { Batchgate, version };
