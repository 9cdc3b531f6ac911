import init from "./batchgate.js";
await init({ module_or_path: new URL("./batchgate_bg.wasm", import.meta.url) });
