// What both entries export, once the wasm is instantiated. The wasm's
// iterators (a job's views, result lines, a stream's chunks) have `next` and
// `return`; this makes them usable in `for await`, which looks for
// Symbol.asyncIterator.
import { Batchgate, Items, errorClass, version } from "batchgate-wasm";

Items.prototype[Symbol.asyncIterator] = function () {
  return this;
};

export const BatchgateError = errorClass();
export { Batchgate, version };
