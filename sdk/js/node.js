// Node entry (≥ 20).
import "./load-node.js";

export * from "./exports.js";
