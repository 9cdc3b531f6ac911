// The wasm, fetched and instantiated (top-level await) before the exports
// module runs: the entries import this first.
import init from "batchgate-wasm";

await init({ module_or_path: new URL("./batchgate_bg.wasm", import.meta.url) });
