// The demo in headless Chromium (Debian's, driven by playwright-core) against
// the real worker, which serves it, and the Gemini emulator. Run by
// tests/tests/demo_e2e.rs with DEMO_URL, BATCHGATE_TOKEN, EMULATOR_URL and
// ARTIFACTS_DIR (screenshots land there).
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";

const { DEMO_URL: url, BATCHGATE_TOKEN: token, EMULATOR_URL: emulator, ARTIFACTS_DIR: artifacts } = process.env;
const errors = [];
let page;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
});
try {
  await run();
} catch (e) {
  await page?.screenshot({ path: path.join(artifacts, "demo-failure.png"), fullPage: true }).catch(() => {});
  console.error(`page errors: ${JSON.stringify(errors)}`);
  throw e;
} finally {
  await browser.close();
}
assert.deepEqual(errors, [], "no script errors on the page");
console.log("demo e2e: ok");

async function control(route, body) {
  const r = await fetch(`${emulator}/_emulator${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.ok(r.ok, `emulator control ${route}: ${r.status}`);
}

async function run() {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("requestfailed", (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.setDefaultTimeout(30_000);
  const shot = (name) => page.screenshot({ path: path.join(artifacts, `demo-${name}.png`), fullPage: true });
  const micro = async (selector) => Number(await page.getAttribute(selector, "data-micro"));
  const waitMicro = (selector) =>
    page.waitForFunction((s) => document.querySelector(s)?.dataset.micro !== "", selector);

  // Sign in: a bad token is refused with a message; the dev token works.
  await page.goto(url);
  await page.getByLabel("API token").fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent.length > 0);
  assert.match(await page.textContent("#signin-error"), /token/i);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector("#app:not([hidden])");
  errors.length = 0; // the refused token's 401 was expected
  await waitMicro("#balance");
  const before = await micro("#balance");

  // Twenty sample requests, quoted (batch is half of standard), submitted.
  await page.getByRole("tab", { name: "Sample requests" }).click();
  await page.getByLabel("How many").fill("20");
  await page.getByRole("button", { name: "Generate" }).click();
  await page.waitForSelector("#quote:not([hidden])");
  const [standard, batch, savings] = [await micro("#quote-standard"), await micro("#quote-batch"), await micro("#quote-savings")];
  assert.ok(batch > 0 && Math.abs(standard - 2 * batch) <= 1 && savings === standard - batch, `${standard} ${batch} ${savings}`);
  assert.match(await page.textContent("#jsonl-status"), /20 requests/);
    await page.getByLabel("Name").fill("demo e2e");
    await page.check('input[name="lane"][value="batch"]');
  await shot("quote");
  await page.getByRole("button", { name: "Submit job" }).click();
  await page.waitForSelector("#job:not([hidden])");
  await page.waitForFunction(() => {
    const p = document.querySelector("#progress");
    return p.max === 20 && p.value === 20;
  }, null, { timeout: 120_000 });
  assert.match(await page.textContent("#progress-text"), /20 of 20 done \(100 %\)/);
  await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 20, null, { timeout: 60_000 });
  await waitMicro("#cost-charged");
  const charged = await micro("#cost-charged");
  assert.ok(charged > 0 && charged <= batch, `charged ${charged}, reserved ${batch}`);
  assert.equal(await page.textContent("#job-state"), "succeeded");
  const timeline = await page.textContent("#timeline");
  for (const state of ["accepted", "succeeded", "charged"]) assert.ok(timeline.includes(state), timeline);
  // Each row's credits are its usage at the batch price; together they are the charge (± rounding).
  const rowCredits = await page.$$eval("#results tbody td[data-micro]", (tds) => tds.map((td) => Number(td.dataset.micro)));
  const sum = rowCredits.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - charged) <= rowCredits.length, `rows ${sum}, charged ${charged}`);
  assert.ok((await page.textContent("#results tbody tr:first-child td.preview")).length > 10, "answers are shown");
  // The balance dropped by exactly the charge shown.
  await page.waitForFunction(
    ([b, c]) => Number(document.querySelector("#balance").dataset.micro) === b - c,
    [before, charged],
    { timeout: 20_000 },
  );
  await page.waitForFunction(() => document.querySelector("#history tbody")?.textContent.includes("demo e2e"));
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download results" }).click();
  assert.match((await download).suggestedFilename(), /^results-.*\.jsonl$/);
  await shot("succeeded");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(artifacts, "demo-readme.png") });

    // The realtime lane, on an image model: answered now at the standard price, pictures shown.
  await page.selectOption("#model", "gemini-3-pro-image-preview");
  await page.getByLabel("How many").fill("2");
  await page.getByRole("button", { name: "Generate" }).click();
  await page.getByLabel("Name").fill("pictures");
  await page.check('input[name="lane"][value="realtime"]');
  await page.waitForFunction(() => !document.querySelector("#submit").disabled);
    await page.getByRole("button", { name: "Submit job" }).click();
  await page.waitForFunction(() => document.querySelector("#job-name").textContent.startsWith("pictures"));
  await page.waitForFunction(() => document.querySelector("#job-state").textContent === "succeeded", null, { timeout: 60_000 });
  assert.match(await page.textContent("#job-lane"), /realtime/);
  await page.waitForFunction(() => [...document.querySelectorAll("#results img.answer-image")].filter((i) => i.naturalWidth === 1).length === 2, null, { timeout: 30_000 });
  await waitMicro("#cost-charged");
  const rtRows = await page.$$eval("#results tbody td[data-micro]", (tds) => tds.map((td) => Number(td.dataset.micro)));
  assert.equal(rtRows.reduce((a, b) => a + b, 0), await micro("#cost-charged"), "realtime rows at the standard price are the charge");
    await shot("realtime-images");
  await page.selectOption("#model", "gemini-2.5-flash");
  await page.check('input[name="lane"][value="batch"]');

  // Cancel: Gemini holds the batch; the user cancels; the job ends cancelled and costs nothing.
  await control("/config", { stickNewBatches: true });
  await page.getByRole("tab", { name: "Sample requests" }).click();
  await page.getByLabel("How many").fill("3");
  await page.getByRole("button", { name: "Generate" }).click();
  await page.getByLabel("Name").fill("to cancel");
  await page.waitForFunction(() => !document.querySelector("#submit").disabled);
  await page.getByRole("button", { name: "Submit job" }).click();
  await page.waitForFunction(() => ["pending", "running"].includes(document.querySelector("#job-state").textContent), null, { timeout: 60_000 });
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  await page.waitForFunction(() => document.querySelector("#job-state").textContent === "cancelled", null, { timeout: 60_000 });
  await waitMicro("#cost-charged");
  assert.equal(await micro("#cost-charged"), 0);
  assert.ok(await page.getByRole("button", { name: "Cancel", exact: true }).isDisabled());
  await shot("cancelled");
  await control("/config", { stickNewBatches: false });

  // Upload: a PDF is uploaded with a progress bar, becomes a request, and the job on it succeeds.
  await page.getByRole("tab", { name: "Upload files" }).click();
  await page.getByLabel("Name").fill("with a pdf");
  await page.fill("#jsonl", "");
  const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(300_000, 7)]);
  await page.setInputFiles("#files", { name: "report.pdf", mimeType: "application/pdf", buffer: pdf });
  await page.waitForFunction(() => document.querySelector("#uploads li:last-child span:last-child")?.textContent === "uploaded", null, { timeout: 60_000 });
  assert.equal(await page.$eval("#uploads li:last-child progress", (p) => p.value), 1);
  const line = JSON.parse((await page.inputValue("#jsonl")).trim());
  assert.equal(line.key, "report.pdf");
  assert.match(line.request.contents[0].parts[0].fileData.fileUri, /files\//);
  await page.waitForFunction(() => !document.querySelector("#submit").disabled);
  await shot("upload");
  await page.getByRole("button", { name: "Submit job" }).click();
  await page.waitForFunction(() => document.querySelector("#job-state").textContent === "succeeded", null, { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 1, null, { timeout: 60_000 });

  // At phone width everything still fits: no horizontal scrolling of the page.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px`);
  await shot("phone");
}
