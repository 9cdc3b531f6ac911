// Node's fetch cannot read file: URLs, so the wasm is read from disk.
import { readFileSync } from "node:fs";
import { initSync } from "./batchgate.js";
initSync({ module: readFileSync(new URL("./batchgate_bg.wasm", import.meta.url)) });
