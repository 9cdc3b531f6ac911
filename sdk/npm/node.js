// Node entry (≥ 20): the wasm is read from disk (init-node.js) before api.js runs.
import "./init-node.js";
export * from "./api.js";
