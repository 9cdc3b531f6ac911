// Google's own JS SDK (@google/genai), unchanged but for its base URL and a
// batchgate token as the API key, against the worker's /gemini. Run by
// tests/tests/dropin_e2e.rs with BATCHGATE_URL and BATCHGATE_TOKEN set.
import { GoogleGenAI } from '@google/genai';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.BATCHGATE_URL;
const gemini = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${BASE}/gemini` } });
const ai = gemini(process.env.BATCHGATE_TOKEN);
const ENDED = new Set(['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED']);

async function wait(name, secs = 90) {
  const deadline = Date.now() + secs * 1000;
  for (;;) {
    const job = await ai.batches.get({ name });
    if (ENDED.has(job.state)) return job;
    assert.ok(Date.now() < deadline, `${name} stayed ${job.state}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const checks = {
  async 'an inline batch answers inline, in order, with its keys'() {
    const src = ['first', 'second', 'third'].map((q, i) => ({
      contents: [{ role: 'user', parts: [{ text: `${q} question` }] }],
      metadata: { key: `k${i}` },
    }));
    let job = await ai.batches.create({ model: 'gemini-2.5-flash-lite', src, config: { displayName: 'js-inline' } });
    assert.match(job.name, /^batches\/[0-9a-f]{64}$/);
    job = await wait(job.name);
    assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
    assert.equal(job.displayName, 'js-inline');
    const answers = job.dest.inlinedResponses;
    assert.deepEqual(answers.map((a) => a.metadata.key), ['k0', 'k1', 'k2']);
    assert.ok(answers[0].response.candidates[0].content.parts[0].text.includes('first question'));
  },

  async 'a JSONL uploaded with files.upload makes a batch whose results file downloads'() {
    const dir = await mkdtemp(join(tmpdir(), 'genai-js-'));
    const path = join(dir, 'requests.jsonl');
    const lines = [0, 1, 2].map((i) => ({ key: `js-${i}`, request: { contents: [{ parts: [{ text: `item ${i}` }] }] } }));
    await writeFile(path, lines.map((l) => JSON.stringify(l) + '\n').join(''));
    const file = await ai.files.upload({ file: path, config: { mimeType: 'jsonl', displayName: 'js-input' } });
    assert.match(file.name, /^files\//);
    assert.equal(Number(file.sizeBytes), (await readFile(path)).length);
    let job = await ai.batches.create({ model: 'gemini-2.5-flash', src: file.name });
    job = await wait(job.name);
    assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
    const out = join(dir, 'results.jsonl');
    await ai.files.download({ file: job.dest.fileName, downloadPath: out });
    const keys = (await readFile(out, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).key);
    assert.deepEqual(keys.sort(), ['js-0', 'js-1', 'js-2']);
  },

  async 'batches.list pages newest first; cancel and delete answer as Gemini does'() {
    const made = [];
    for (let i = 0; i < 3; i++) {
      const job = await ai.batches.create({
        model: 'gemini-2.5-flash-lite',
        src: [{ contents: [{ parts: [{ text: `listed ${i}` }] }] }],
      });
      made.push(job.name);
    }
    const listed = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } })) listed.push(job.name);
    assert.deepEqual(listed.filter((n) => made.includes(n)), [...made].reverse());
    await ai.batches.delete({ name: made[0] });
    await assert.rejects(ai.batches.get({ name: made[0] }), (e) => e.status === 404);
  },

  async 'generateContent and countTokens run in the realtime lane'() {
    const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'abcdefgh' });
    assert.ok(r.text.includes('abcdefgh'));
    const c = await ai.models.countTokens({ model: 'gemini-2.5-flash', contents: 'abcdefgh' });
    assert.equal(c.totalTokens, r.usageMetadata.promptTokenCount);
  },

  async 'a bad token is refused in Gemini\'s error envelope'() {
    await assert.rejects(gemini('not-a-token').batches.get({ name: 'batches/x' }), (e) => {
      assert.equal(e.status, 401);
      assert.match(e.message, /UNAUTHENTICATED/);
      return true;
    });
  },
};

for (const [name, check] of Object.entries(checks)) {
  await check();
  console.log(`ok - ${name}`);
}
