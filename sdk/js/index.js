// Browser and web worker entry: every export is ready once the import resolves.
import "./load-browser.js";

export * from "./exports.js";
