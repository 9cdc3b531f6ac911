// Browser entry: fetch and instantiate the wasm next to this file, once.
import init from "./batchgate.js";
await init({ module_or_path: new URL("./batchgate_bg.wasm", import.meta.url) });
export * from "./api.js";
