// The local server for the worker: wrangler's own dev engine (Miniflare and
// workerd, the same runtime, storage and bindings as `wrangler dev`) started
// with the DevTools inspector off.
//
// Why not `wrangler dev`: it always attaches an inspector that enables the
// CDP Network domain, and its proxy forwards every CDP event (one per body
// chunk of every subrequest) to Node over a fresh loopback connection. Moving a
// 200 MB results file or a 1 GB upload then opens tens of thousands of sockets
// until workerd fails with "Too many open files". Production has no inspector.
//
// Usage: node worker/serve.mjs [--ip IP] [--port N] [--persist-to DIR]
//                              [--log-level LEVEL] [--watch true] [--direct true]
//                              [--var NAME:VALUE]... [--secret NAME:VALUE]...
//
// `--direct true` prints (and tests and benchmarks use) the URL of workerd's
// own socket instead of wrangler's proxy in front of it: the proxy only keeps
// a stable port across reloads, and costs a hop on every request body.

import { unstable_DevEnv } from "wrangler";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const opts = { ip: "127.0.0.1", port: 8787, persistTo: path.join(root, ".wrangler/state"), logLevel: "log", watch: false, direct: false };
const vars = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [flag, value] = [argv[i], argv[i + 1]];
  if (value === undefined) fail(`${flag} needs a value`);
  if (flag === "--ip") opts.ip = value;
  else if (flag === "--port") opts.port = Number(value);
  else if (flag === "--persist-to") opts.persistTo = value;
  else if (flag === "--log-level") opts.logLevel = value;
  else if (flag === "--watch") opts.watch = value === "true";
  else if (flag === "--direct") opts.direct = value === "true";
  else if (flag === "--var" || flag === "--secret") {
    // A secret is bound as one (as `wrangler secret put` does): wrangler never
    // prints its value, where it lists a plain var's in its log.
    const at = value.indexOf(":");
    if (at < 1) fail(`${flag} wants NAME:VALUE, got ${value}`);
    const type = flag === "--secret" ? "secret_text" : "plain_text";
    vars[value.slice(0, at)] = { type, value: value.slice(at + 1) };
  } else fail(`unknown option ${flag}`);
}

function fail(message) {
  console.error(`serve.mjs: ${message}`);
  process.exit(2);
}

// Learn workerd's own address from the runtime's reload events.
const devEnv = new unstable_DevEnv();
let reloaded;
const direct = new Promise((resolve) => (reloaded = resolve));
const dispatch = devEnv.dispatch.bind(devEnv);
devEnv.dispatch = (event) => {
  if (event.type === "reloadComplete") {
    const u = event.proxyData.userWorkerUrl;
    reloaded(`${u.protocol}//${u.hostname}:${u.port}/`);
  }
  dispatch(event);
};

const worker = await devEnv.startWorker({
  config: path.join(root, "wrangler.toml"),
  // wrangler builds once from the config either way; without --watch, no build
  // watcher either: it would rebuild and reload the worker right after start,
  // failing any POST that arrives during the reload.
  build: opts.watch ? undefined : { custom: { command: "" } },
  bindings: vars,
  dev: {
    inspector: false,
    remote: false,
    watch: opts.watch,
    persist: opts.persistTo,
    logLevel: opts.logLevel,
    server: { hostname: opts.ip, port: opts.port },
  },
});
await worker.ready;
const url = opts.direct ? await direct : (await worker.url).href;
console.log(`worker ready on ${url}`);

const stop = async () => {
  await worker.dispose().catch(() => {});
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
