// Node entry (≥ 20): Node's fetch cannot read file: URLs, so the wasm is read
// from disk and instantiated before anything is exported.
import { readFileSync } from "node:fs";
import { initSync } from "batchgate-wasm";

initSync({ module: readFileSync(new URL("./batchgate_bg.wasm", import.meta.url)) });

export { Batchgate } from "./client.js";
export { BatchgateError } from "./errors.js";
export { version } from "batchgate-wasm";
