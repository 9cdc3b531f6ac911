// Browser entry: the wasm is fetched and instantiated before anything is
// exported, so every export is ready to use once the import resolves.
import init from "batchgate-wasm";

await init({ module_or_path: new URL("./batchgate_bg.wasm", import.meta.url) });

export { Batchgate } from "./client.js";
export { BatchgateError } from "./errors.js";
export { version } from "batchgate-wasm";
