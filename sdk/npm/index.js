// Browser entry: the wasm is fetched and instantiated (init-web.js) before
// api.js runs, because imports evaluate in order.
import "./init-web.js";
export * from "./api.js";
