// The batchgate demo: everything a user does, through the npm SDK only.
// Amounts are micro-credits (integers) until they are shown; each amount shown
// also carries its exact value in `data-micro` (the browser e2e reads those).
import { Batchgate, BatchgateError } from "batchgate";

const TOKEN_KEY = "batchgate-token";
const RESULT_ROWS = 500; // rows shown; the download has every line
const $ = (id) => document.getElementById(id);

let bg = null;
let current = null; // the job on screen: {id, model, view, watch}
let quoteTimer = 0;
let uploads = 0;

// ---------- formatting

const credits = (micro) =>
  (micro / 1e6).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 6 });

function showMicro(el, micro) {
  el.textContent = micro === undefined || micro === null ? "–" : credits(micro);
  el.dataset.micro = micro === undefined || micro === null ? "" : String(micro);
}

const time = (iso) => new Date(iso).toLocaleTimeString("en-GB", { hour12: false });

function describe(e) {
  if (e instanceof BatchgateError) {
    if (e.isNetworkError) return "The server cannot be reached. Check your connection and try again.";
    if (e.code === "insufficient_credits" && e.details) {
      return `Not enough credits: this job needs ${credits(e.details.needed)} and the balance is ${credits(e.details.balance)}.`;
    }
    return `${e.message} (${e.code})`;
  }
  return String(e?.message ?? e);
}

function setError(id, e) {
  $(id).textContent = e ? describe(e) : "";
}

// ---------- sign in

async function signIn(token) {
  const client = new Batchgate({ endpoint: location.origin, token });
  const account = await client.account(); // a bad token throws here (401)
  bg = client;
  localStorage.setItem(TOKEN_KEY, token);
  $("signin-panel").hidden = true;
  $("app").hidden = false;
  $("account").hidden = false;
  showMicro($("balance"), account.balance);
  const select = $("model");
  select.replaceChildren(
    ...bg.models().map((m) => new Option(m, m, m === "gemini-2.5-flash", m === "gemini-2.5-flash")),
  );
  requestsChanged();
  refreshHistory();
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  setError("signin-error", null);
  try {
    await signIn($("token").value.trim());
  } catch (e) {
    setError("signin-error", e);
    $("token").focus();
  }
});

$("signout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  location.reload();
});

async function refreshBalance() {
  try {
    showMicro($("balance"), (await bg.account()).balance);
  } catch {
    // Shown again on the next refresh; a failed refresh is not worth an alert.
  }
}

// ---------- composing requests

function parseRequests() {
  const requests = [];
  const lineOf = [];
  $("jsonl").value.split(/\r?\n/).forEach((text, i) => {
    if (!text.trim()) return;
    try {
      requests.push(JSON.parse(text));
    } catch (e) {
      throw new Error(`Line ${i + 1} is not valid JSON: ${e.message}`);
    }
    lineOf.push(i + 1);
  });
  return { requests, lineOf };
}

function requestsChanged() {
  clearTimeout(quoteTimer);
  quoteTimer = setTimeout(updateQuote, 250);
}

function updateQuote() {
  const status = $("jsonl-status");
  const submit = $("submit");
  status.classList.remove("bad");
  submit.disabled = true;
  $("quote").hidden = true;
  if (!bg) return;
  let parsed;
  try {
    parsed = parseRequests();
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
    return;
  }
  const { requests, lineOf } = parsed;
  if (requests.length === 0) {
    status.textContent = "No requests yet: generate samples, upload files or paste JSONL.";
    return;
  }
  try {
    const quote = bg.estimate({ model: $("model").value, requests });
    showMicro($("quote-standard"), quote.standard);
    showMicro($("quote-batch"), quote.batch);
    showMicro($("quote-savings"), quote.savings);
    $("quote").hidden = false;
    const tokens = quote.tokens.input + quote.tokens.output;
    status.textContent = `${requests.length} request${requests.length === 1 ? "" : "s"}, up to ${tokens.toLocaleString("en-US")} tokens.`;
    submit.disabled = uploads > 0;
  } catch (e) {
    // The SDK numbers requests; the box numbers lines (blank ones included).
    status.textContent = describe(e).replace(/line (\d+)/, (_, n) => `line ${lineOf[Number(n) - 1] ?? n}`);
    status.classList.add("bad");
  }
}

$("jsonl").addEventListener("input", requestsChanged);
$("model").addEventListener("change", requestsChanged);

const TOPICS = ["the sky", "the sea", "volcanoes", "honey bees", "glaciers", "comets", "tides", "lightning"];
$("generate").addEventListener("click", () => {
  const n = Math.max(1, Math.min(10000, Number($("sample-count").value) || 20));
  const lines = Array.from({ length: n }, (_, i) => {
    const topic = TOPICS[i % TOPICS.length];
    const request = { contents: [{ parts: [{ text: `Question ${i + 1}: explain ${topic} to a ten-year-old.` }] }], generationConfig: { maxOutputTokens: 256 } };
    return JSON.stringify({ key: `sample-${i + 1}`, request });
  });
  $("jsonl").value = lines.join("\n");
  requestsChanged();
});

// Tabs, with the keyboard behaviour of the WAI-ARIA tabs pattern.
const tabs = [...document.querySelectorAll('[role="tab"]')];
function selectTab(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
}
for (const tab of tabs) {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    selectTab(next);
    next.focus();
  });
}

// ---------- uploads

function keyFor(name) {
  const base = name.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 60) || "file";
  const taken = new Set(parseKeys());
  let key = base;
  for (let i = 2; taken.has(key); i++) key = `${base}-${i}`;
  return key;
}

function parseKeys() {
  try {
    return parseRequests().requests.map((r) => r.key).filter(Boolean);
  } catch {
    return [];
  }
}

async function uploadFile(file) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const status = document.createElement("span");
  status.textContent = "starting";
  item.append(name, bar, status);
  $("uploads").append(item);
  uploads += 1;
  requestsChanged();
  try {
    const uploaded = await bg.upload(file, {
      displayName: file.name,
      onProgress: (p) => {
        bar.value = p.size ? p.received / p.size : 1;
        status.textContent = `${Math.round(bar.value * 100)} %`;
      },
    });
    bar.value = 1;
    status.textContent = "uploaded";
    const parts = [{ fileData: { mimeType: uploaded.mimeType, fileUri: uploaded.uri } }, { text: $("prompt").value || "Describe this file." }];
    const line = JSON.stringify({ key: keyFor(file.name), request: { contents: [{ parts }] } });
    const box = $("jsonl");
    box.value = box.value.trim() ? `${box.value.trimEnd()}\n${line}` : line;
  } catch (e) {
    status.textContent = describe(e);
    status.classList.add("error");
  } finally {
    uploads -= 1;
    requestsChanged();
  }
}

$("files").addEventListener("change", (e) => {
  for (const f of e.target.files) uploadFile(f);
  e.target.value = "";
});
const zone = $("dropzone");
zone.addEventListener("dragover", (e) => {
  e.preventDefault();
  zone.classList.add("over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  for (const f of e.dataTransfer.files) uploadFile(f);
});

// ---------- submitting and following a job

$("submit").addEventListener("click", async () => {
  setError("submit-error", null);
  $("submit").disabled = true;
  try {
    const { requests } = parseRequests();
    const displayName = $("display-name").value.trim() || undefined;
        const mode = document.querySelector('input[name="lane"]:checked')?.value ?? "auto";
    const job = await bg.submit({ model: $("model").value, requests, displayName, mode });
    refreshBalance();
    refreshHistory();
    openJob(job);
  } catch (e) {
    setError("submit-error", e);
  } finally {
    updateQuote();
  }
});

const isFinal = (view) =>
  ["succeeded", "failed", "expired", "cancelled"].includes(view.state) && view.cost?.charged !== undefined;

async function openJob(view) {
  current?.watch?.return();
  const mine = { id: view.id, model: view.model, view, watch: null, lastState: null, lastDone: -1 };
  current = mine;
  setError("job-error", null);
  $("job").hidden = false;
  $("timeline").replaceChildren();
  $("results").tBodies[0].replaceChildren();
  render(view);
  $("job").scrollIntoView?.({ block: "nearest" });
  if (!isFinal(view)) {
    mine.watch = bg.watch(view.id, { intervalMs: 1000 });
    try {
      for await (const v of mine.watch) {
        if (current !== mine) return;
        render(v);
      }
    } catch (e) {
      if (current === mine) setError("job-error", e);
      return;
    }
  }
  if (current !== mine) return;
  await showResults(mine);
  refreshBalance();
  refreshHistory();
}

function render(view) {
  const job = current;
  job.view = view;
  $("job-name").textContent = view.displayName ? `${view.displayName} (${view.id.slice(0, 8)})` : view.id;
  const badge = $("job-state");
  badge.textContent = view.state;
  badge.className = `badge ${view.state}`;
    $("job-retry-of").textContent = view.retryOf ? `retry of ${view.retryOf.slice(0, 8)}` : "";
  $("job-lane").textContent = view.laneReason ? `${view.lane} lane (${view.laneReason})` : `${view.lane ?? "batch"} lane`;
  const done = view.counts.succeeded + view.counts.failed;
  const total = Math.max(1, view.requestCount);
  const bar = $("progress");
  bar.max = total;
  bar.value = Math.min(done, total);
  const pct = Math.floor((100 * Math.min(done, total)) / total);
  bar.setAttribute("aria-valuetext", `${pct} %`);
  // A job over Gemini's quota runs as several batches, one after another.
  const shards = view.shards > 1 ? `; batch ${Math.min(view.shard + 1, view.shards)} of ${view.shards}` : "";
  $("progress-text").textContent =
    `${done} of ${view.requestCount} done (${pct} %): ${view.counts.succeeded} succeeded, ${view.counts.failed} failed${shards}`;
  showMicro($("cost-reserved"), view.cost?.reserved);
  showMicro($("cost-charged"), view.cost?.charged);
  showMicro($("cost-saved"), view.cost ? view.cost.standard - view.cost.delivered : undefined);
  const ended = ["succeeded", "failed", "expired", "cancelled"].includes(view.state);
  $("cancel").disabled = ended || view.cancelRequested;
  $("retry").disabled = !ended || view.counts.failed === 0;
  $("download").disabled = !view.resultsReady;
  if (view.state !== job.lastState || (done !== job.lastDone && !ended)) {
    const entry = document.createElement("li");
    const at = document.createElement("time");
    at.dateTime = view.updatedAt;
    at.textContent = time(view.updatedAt);
    const what = view.state !== job.lastState ? view.state : `${done} of ${view.requestCount} done`;
    entry.append(at, what + (view.error ? `: ${view.error.message}` : ""));
    $("timeline").append(entry);
    job.lastState = view.state;
    job.lastDone = done;
  }
  if (view.cost?.charged !== undefined && ended) {
    const note = document.createElement("li");
    note.textContent = `charged ${credits(view.cost.charged)} credits`;
    if (!$("timeline").lastElementChild?.textContent.startsWith("charged")) $("timeline").append(note);
  }
}

/** The answer's media parts (`inlineData`, linked by the server rather than inline). */
function mediaOf(line) {
  const parts = line.response?.candidates?.[0]?.content?.parts ?? [];
  return parts.map((p) => p.inlineData).filter(Boolean);
}

function answerText(line) {
  const parts = line.response?.candidates?.[0]?.content?.parts ?? [];
  return parts.map((p) => p.text ?? "").join("");
}

async function showResults(job) {
  if (!job.view.resultsReady) return;
  const body = $("results").tBodies[0];
  const rows = [];
  try {
    for await (const line of bg.results(job.id)) {
      if (rows.length >= RESULT_ROWS) break;
      const row = document.createElement("tr");
      const cell = (text, cls) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        row.append(td);
        return td;
      };
      cell(line.key);
      if (line.error) cell(`error ${line.error.code ?? ""}`.trim(), "bad");
      else cell("ok", "ok");
            const text = line.error ? line.error.message ?? "" : answerText(line);
      const preview = cell(text.length > 140 ? `${text.slice(0, 140)}…` : text, "preview");
      for (const [n, media] of mediaOf(line).entries()) {
        if (!media.mimeType?.startsWith("image/")) continue;
        const img = document.createElement("img");
        img.alt = `image ${n + 1} of the answer to ${line.key}`;
        img.className = "answer-image";
        preview.append(img);
        bg.resultMedia(job.id, line.key, n).then((blob) => (img.src = URL.createObjectURL(blob)), () => img.remove());
      }
      cell(String(line.response?.usageMetadata?.totalTokenCount ?? 0), "num");
            // Realtime answers cost the standard price, batch ones half of it.
      const cost = bg.resultCost(job.model, line);
      const price = job.view.lane === "realtime" ? cost.standard : cost.batch;
      const td = cell(credits(price), "num");
      td.dataset.micro = String(price);
      rows.push(row);
    }
  } catch (e) {
    setError("job-error", e);
  }
  if (current === job) body.replaceChildren(...rows);
}

$("cancel").addEventListener("click", async () => {
  setError("job-error", null);
  try {
    render(await bg.cancel(current.id));
  } catch (e) {
    setError("job-error", e);
  }
});

$("retry").addEventListener("click", async () => {
  setError("job-error", null);
  try {
    const child = await bg.retryFailed(current.id);
    refreshBalance();
    refreshHistory();
    openJob(child);
  } catch (e) {
    setError("job-error", e);
  }
});

$("download").addEventListener("click", async () => {
  setError("job-error", null);
  try {
    const lines = [];
    for await (const line of bg.results(current.id)) lines.push(`${JSON.stringify(line)}\n`);
    const url = URL.createObjectURL(new Blob(lines, { type: "application/x-ndjson" }));
    const a = Object.assign(document.createElement("a"), { href: url, download: `results-${current.id.slice(0, 12)}.jsonl` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    setError("job-error", e);
  }
});

// ---------- history

async function refreshHistory() {
  try {
    const page = await bg.list({ limit: 20 });
    const rows = page.jobs.map((job) => {
      const row = document.createElement("tr");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "link";
      open.textContent = job.displayName ?? job.id.slice(0, 12);
      open.setAttribute("aria-label", `Open job ${job.displayName ?? job.id}`);
      open.addEventListener("click", async (e) => {
        e.stopPropagation();
        try {
          openJob(await bg.job(job.id));
        } catch (err) {
          setError("job-error", err);
        }
      });
      const first = document.createElement("td");
      first.append(open);
      row.append(first);
            for (const text of [job.state, job.lane ?? "batch", job.model, new Date(job.createdAt).toLocaleString("en-GB")]) {
        const td = document.createElement("td");
        td.textContent = text;
        row.append(td);
      }
      row.addEventListener("click", () => open.click());
      return row;
    });
    $("history").tBodies[0].replaceChildren(...rows);
  } catch {
    // The next refresh tries again.
  }
}

// ---------- start: a token from the URL fragment (`#token=…`, never sent to a
// server) or from the last session.

const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) history.replaceState(null, "", location.pathname + location.search);
const saved = fromHash ?? localStorage.getItem(TOKEN_KEY);
if (saved) {
  $("token").value = saved;
  signIn(saved).catch((e) => setError("signin-error", e));
}
