"""Google's own Python SDK (google-genai), unchanged, against the emulator.

Passing these is what proves the emulator speaks the real wire protocol: the SDK
parses every response with its own converters and raises on anything off.
"""
import json
import math
import time

import pytest
from google.genai import errors, types

from conftest import emulator_only

TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def expected_usage(model, text):
    """The emulator's documented token rules (emulator/src/model.rs)."""
    prompt = max(1, math.ceil(len(text) / 4))
    candidates = prompt // 2 + 10
    thinks = not any(s in model for s in ("lite", "1.5", "2.0"))
    thoughts = 2 * candidates if thinks else 0
    return prompt, candidates, thoughts


def wait(client, name, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.batches.get(name=name)
        if job.state.value in TERMINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish")


def test_file_batch_upload_create_poll_download(client, tmp_path):
    prompts = {f"req-{i}": f"Describe item number {i} in detail." for i in range(25)}
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(
        json.dumps({"key": k, "request": {"contents": [{"parts": [{"text": t}], "role": "user"}]}}) + "\n"
        for k, t in prompts.items()))

    uploaded = client.files.upload(file=str(path), config=types.UploadFileConfig(
        display_name="conformance-input", mime_type="jsonl"))
    assert uploaded.name.startswith("files/")
    assert uploaded.size_bytes == path.stat().st_size
    assert uploaded.state.value == "ACTIVE"
    assert uploaded.mime_type == "jsonl"

    job = client.batches.create(model="gemini-2.5-flash", src=uploaded.name,
                                config={"display_name": "conformance-file"})
    assert job.name.startswith("batches/")
    assert job.state.value == "JOB_STATE_PENDING"
    assert job.display_name == "conformance-file"
    assert job.create_time is not None

    job = wait(client, job.name)
    assert job.state.value == "JOB_STATE_SUCCEEDED"
    assert job.end_time >= job.create_time
    assert job.dest.file_name == "files/batch-" + job.name.split("/")[1]

    data = client.files.download(file=job.dest.file_name)
    lines = [json.loads(l) for l in data.decode().splitlines() if l.strip()]
    assert {l["key"] for l in lines} == set(prompts)
    for line in lines:
        usage = line["response"]["usageMetadata"]
        prompt, cand, thoughts = expected_usage("gemini-2.5-flash", prompts[line["key"]])
        assert (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["thoughtsTokenCount"]) == (prompt, cand, thoughts)
        # The SDK's own response type parses each result line.
        parsed = types.GenerateContentResponse.model_validate(line["response"])
        assert parsed.usage_metadata.total_token_count == prompt + cand + thoughts
        assert parsed.text


def test_inline_batch(client):
    src = [
        {"contents": [{"parts": [{"text": "first question"}], "role": "user"}], "metadata": {"key": "a"}},
        {"contents": [{"parts": [{"text": "second question"}], "role": "user"}], "metadata": {"key": "b"},
         "config": {"max_output_tokens": 4, "temperature": 0.2}},
    ]
    job = client.batches.create(model="gemini-2.5-flash-lite", src=src, config={"display_name": "inline"})
    job = wait(client, job.name)
    assert job.state.value == "JOB_STATE_SUCCEEDED"
    responses = job.dest.inlined_responses
    assert len(responses) == 2
    by_key = {r.metadata["key"]: r for r in responses}
    assert by_key["b"].response.usage_metadata.candidates_token_count == 4
    assert "first question" in by_key["a"].response.text


def test_list_cancel_delete(client, emu, tmp_path):
    emu.control("/config", {"stickNewBatches": True})
    names = [client.batches.create(model="gemini-2.5-flash",
                                   src=[{"contents": [{"parts": [{"text": f"q{i}"}]}], "metadata": {"key": "k"}}],
                                   config={"display_name": f"list-{i}"}).name for i in range(5)]
    listed = [j.name for j in client.batches.list(config={"page_size": 2})]
    assert listed == list(reversed(names)), "newest first, all pages followed"

    client.batches.cancel(name=names[0])
    job = wait(client, names[0])  # cancel is best effort: poll get for the outcome
    assert job.state.value == "JOB_STATE_CANCELLED"

    client.batches.delete(name=names[1])
    with pytest.raises(errors.APIError) as e:
        client.batches.get(name=names[1])
    assert e.value.code == 404


def test_files_get_list_delete(client, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("hello")
    f = client.files.upload(file=str(path), config={"mime_type": "text/plain"})
    assert client.files.get(name=f.name).size_bytes == 5
    assert f.name in [x.name for x in client.files.list(config={"page_size": 10})]
    client.files.delete(name=f.name)
    with pytest.raises(errors.APIError):
        client.files.get(name=f.name)


@emulator_only  # batchgate retries Gemini's 429 itself: the job waits, the SDK sees none
def test_429_surfaces_as_the_sdks_api_error(client, emu):
    emu.control("/faults", {"method": "POST", "path": "*/models/*:batchGenerateContent",
                            "kind": "status", "status": 429, "times": 1})
    with pytest.raises(errors.ClientError) as e:
        client.batches.create(model="gemini-2.5-flash",
                              src=[{"contents": [{"parts": [{"text": "x"}]}]}])
    assert e.value.code == 429
    assert e.value.status == "RESOURCE_EXHAUSTED"


def test_unknown_model_and_bad_key(client, emu):
    with pytest.raises(errors.ClientError) as e:
        client.batches.create(model="gemini-0-nonexistent", src=[{"contents": [{"parts": [{"text": "x"}]}]}])
    assert e.value.code == 404
    from google import genai
    bad = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=emu.url))
    with pytest.raises(errors.ClientError) as e:
        bad.batches.list(config={"page_size": 1})
    assert e.value.code == 400


def test_realtime_generate_and_count(client):
    r = client.models.generate_content(model="gemini-2.5-pro", contents="abcdefgh")
    assert r.usage_metadata.prompt_token_count == 2
    assert "abcdefgh" in r.text
    c = client.models.count_tokens(model="gemini-2.5-pro", contents="abcdefgh")
    assert c.total_tokens == 2


@emulator_only  # reads the emulator's log of the SDK's own chunks
def test_upload_chunks_carry_no_key_and_use_the_absolute_session_url(client, emu, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (8 * 1024 * 1024 + 100))  # two chunks: 8 MiB + the rest
    f = client.files.upload(file=str(path), config={"mime_type": "application/octet-stream"})
    assert f.size_bytes == 8 * 1024 * 1024 + 100
    chunks = [r for r in emu.requests() if r["uploadCommand"] in ("upload", "upload, finalize")]
    assert [c["uploadCommand"] for c in chunks] == ["upload", "upload, finalize"]
    assert not any(c["apiKey"] for c in chunks)
