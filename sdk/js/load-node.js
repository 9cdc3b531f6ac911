// Node's fetch cannot read file: URLs: the wasm is read from disk and
// instantiated before the exports module runs.
import { readFileSync } from "node:fs";
import { initSync } from "batchgate-wasm";

initSync({ module: readFileSync(new URL("./batchgate_bg.wasm", import.meta.url)) });
