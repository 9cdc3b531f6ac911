// node bench.mjs PKG_JS LINES_FILE REPS: times scan_total and serde_total
// (alternating, REPS each) over the file's bytes; prints {scan, serde, totals}
// with MB/s per run. The bytes are copied into wasm memory once per call for both.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [pkg, file, reps] = process.argv.slice(2);
const wasm = createRequire(import.meta.url)(pkg);
const data = new Uint8Array(readFileSync(file));
const mbps = (fn) => {
  const t = process.hrtime.bigint();
  const total = fn(data);
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  return [data.length / 1e6 / secs, total];
};
wasm.scan_total(data.subarray(0, 1 << 20)); // warm up the JIT
wasm.serde_total(data.subarray(0, 1 << 20));
const out = { scan: [], serde: [], totals: [] };
for (let i = 0; i < Number(reps); i++) {
  const [a, ta] = mbps(wasm.scan_total);
  const [b, tb] = mbps(wasm.serde_total);
  out.scan.push(a);
  out.serde.push(b);
  out.totals.push([ta, tb]);
}
console.log(JSON.stringify(out));
