// node bench.mjs PKG_JS LINES_FILE REPS: times Corpus.scan_total and
// Corpus.serde_total (alternating, REPS each) over the file's bytes, already in
// wasm memory; prints {scan, serde, totals} with MB/s per run.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [pkg, file, reps] = process.argv.slice(2);
const { Corpus } = createRequire(import.meta.url)(pkg);
const corpus = new Corpus(new Uint8Array(readFileSync(file)));
const mbps = (read) => {
  const t = process.hrtime.bigint();
  const total = read();
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  return [corpus.len() / 1e6 / secs, total];
};
// Warm up until V8 has tiered both paths up (Liftoff first, TurboFan later).
for (let i = 0; i < 3; i++) {
  corpus.scan_total();
  corpus.serde_total();
}
const out = { scan: [], serde: [], totals: [] };
for (let i = 0; i < Number(reps); i++) {
  const [a, ta] = mbps(() => corpus.scan_total());
  const [b, tb] = mbps(() => corpus.serde_total());
  out.scan.push(a);
  out.serde.push(b);
  out.totals.push([ta, tb]);
}
console.log(JSON.stringify(out));
