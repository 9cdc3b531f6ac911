"""Google's own Python SDK (google-genai), unchanged, against the worker's /gemini:
the base URL and a batchgate token as the API key are the only changes. Run by
tests/tests/dropin_e2e.rs with the worker and the emulator behind it."""

import json
import os
import time
import urllib.error
import urllib.request

import pytest
from google import genai
from google.genai import errors, types

BASE = os.environ["BATCHGATE_URL"]
TOKEN = os.environ["BATCHGATE_TOKEN"]
ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def gemini(token=TOKEN):
    # Exactly how a user points the official SDK at another endpoint.
    return genai.Client(api_key=token, http_options=types.HttpOptions(base_url=BASE + "/gemini"))


def batchgate(path, body=None):
    """batchgate's own API, for what the SDK does not show."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method="GET" if body is None else "POST",
                                 headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def emulator(path, body):
    req = urllib.request.Request(os.environ["EMULATOR_URL"] + "/_emulator" + path, data=json.dumps(body).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.read()


def wait(client, name, until=ENDED, secs=90):
    deadline = time.monotonic() + secs
    while True:
        job = client.batches.get(name=name)
        if job.state.value in until:
            return job
        assert time.monotonic() < deadline, f"{name} stayed {job.state}"
        time.sleep(0.3)


def charged(job_id, secs=90):
    """The job's view once its charge has landed (just after its end)."""
    deadline = time.monotonic() + secs
    while True:
        view = batchgate("/v1/jobs/" + job_id)
        if "charged" in view["cost"]:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.3)


def test_an_inline_batch_answers_inline_and_is_an_ordinary_job():
    client = gemini()
    src = [
        {"contents": [{"parts": [{"text": "first question"}], "role": "user"}], "metadata": {"key": "a"}},
        {"contents": [{"parts": [{"text": "second question"}], "role": "user"}], "metadata": {"key": "b"},
         "config": {"max_output_tokens": 4, "temperature": 0.2}},
    ]
    job = client.batches.create(model="gemini-2.5-flash-lite", src=src, config={"display_name": "inline"})
    assert job.name.startswith("batches/") and job.state.value in {"JOB_STATE_PENDING", "JOB_STATE_RUNNING"}
    job = wait(client, job.name)
    assert job.state.value == "JOB_STATE_SUCCEEDED"
    assert job.display_name == "inline"
    responses = job.dest.inlined_responses
    assert [r.metadata["key"] for r in responses] == ["a", "b"], "in the order of the requests"
    by_key = {r.metadata["key"]: r for r in responses}
    assert by_key["b"].response.usage_metadata.candidates_token_count == 4
    assert "first question" in by_key["a"].response.text

    # An ordinary batchgate job: listed, viewed and charged like any other.
    view = charged(job.name.removeprefix("batches/"))
    assert (view["state"], view["displayName"], view["requestCount"]) == ("succeeded", "inline", 2)
    assert view["cost"]["charged"] > 0
    assert view["id"] in [j["id"] for j in batchgate("/v1/jobs?limit=50")["jobs"]]

    # Charged exactly what the same requests cost through /v1/jobs.
    same = [{"key": "a", "request": {"contents": src[0]["contents"]}},
            {"key": "b", "request": {"contents": src[1]["contents"],
                                     "generationConfig": {"maxOutputTokens": 4, "temperature": 0.2}}}]
    twin = charged(batchgate("/v1/jobs", {"model": "gemini-2.5-flash-lite", "requests": same})["id"])
    assert twin["cost"]["charged"] == view["cost"]["charged"]


def test_a_job_made_through_batchgate_is_a_batch_whose_results_file_downloads():
    reqs = [{"key": f"k{i}", "request": {"contents": [{"parts": [{"text": f"question {i}"}]}]}} for i in range(3)]
    made = batchgate("/v1/jobs", {"model": "gemini-2.5-flash", "displayName": "from v1", "requests": reqs})
    client = gemini()
    job = wait(client, "batches/" + made["id"])
    assert job.state.value == "JOB_STATE_SUCCEEDED"
    assert job.dest.file_name == "files/batch-" + made["id"]
    assert job.end_time is not None and job.create_time <= job.end_time

    # Gemini's copies are gone (batchgate deletes them once the results are
    # stored): what downloads is batchgate's, kept past Gemini's 48 hours.
    deadline = time.monotonic() + 30
    while "files_deleted" not in [e["kind"] for e in batchgate(f"/v1/jobs/{made['id']}/events?limit=100")["events"]]:
        assert time.monotonic() < deadline, "Gemini's files were not deleted"
        time.sleep(0.3)
    data = client.files.download(file=job.dest.file_name)
    lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    assert sorted(line["key"] for line in lines) == ["k0", "k1", "k2"]
    for line in lines:
        parsed = types.GenerateContentResponse.model_validate(line["response"])
        assert parsed.text and parsed.usage_metadata.total_token_count > 0

    # The file, as files.get shows it, can be downloaded as a File too.
    f = client.files.get(name=job.dest.file_name)
    assert f.source.value == "GENERATED" and f.download_uri
    assert client.files.download(file=f) == data


def test_list_cancel_delete():
    emulator("/config", {"stickNewBatches": True})
    client = gemini()
    src = [{"contents": [{"parts": [{"text": "held"}]}]}]
    names = [client.batches.create(model="gemini-2.5-flash", src=src, config={"display_name": f"list-{i}"}).name
             for i in range(3)]
    listed = [j.name for j in client.batches.list(config={"page_size": 2})]
    assert [n for n in listed if n in names] == list(reversed(names)), "newest first, every page followed"

    wait(client, names[0], until={"JOB_STATE_RUNNING", "JOB_STATE_PENDING"})
    client.batches.cancel(name=names[0])
    assert wait(client, names[0]).state.value == "JOB_STATE_CANCELLED"

    client.batches.delete(name=names[1])
    with pytest.raises(errors.APIError) as e:
        client.batches.get(name=names[1])
    assert e.value.code == 404
    emulator("/config", {"stickNewBatches": False})
    client.batches.delete(name=names[2])


def test_a_bad_token_is_refused_as_gemini_refuses_a_key():
    bad = gemini("not-a-token")
    with pytest.raises(errors.ClientError) as e:
        bad.batches.list(config={"page_size": 1})
    assert (e.value.code, e.value.status) == (401, "UNAUTHENTICATED"), e.value


def test_a_batch_the_balance_cannot_cover_is_refused_before_it_runs():
    broke = gemini(os.environ["BATCHGATE_BROKE_TOKEN"])
    with pytest.raises(errors.ClientError) as e:
        broke.batches.create(model="gemini-2.5-flash", src=[{"contents": [{"parts": [{"text": "x"}]}]}])
    assert (e.value.code, e.value.status) == (400, "FAILED_PRECONDITION"), e.value
    assert "credit" in e.value.message
    assert "INSUFFICIENT_CREDITS" in json.dumps(e.value.details), "batchgate's code, as an ErrorInfo reason"


def test_generate_content_and_count_tokens_run_in_the_realtime_lane():
    client = gemini()
    before = batchgate("/v1/account")
    r = client.models.generate_content(model="gemini-2.5-flash", contents="abcdefgh")
    assert "abcdefgh" in r.text and r.usage_metadata.prompt_token_count > 0
    c = client.models.count_tokens(model="gemini-2.5-flash", contents="abcdefgh")
    assert c.total_tokens == r.usage_metadata.prompt_token_count
    after = batchgate("/v1/account")
    assert after["spent"] > before["spent"], "the realtime call is charged; counting is free"


def test_the_invoice_flow_uploads_pdfs_and_a_jsonl_then_creates_polls_downloads_and_joins(tmp_path):
    """The invoice extractor's own flow, unchanged: media through to Gemini, the
    JSONL kept by batchgate, the batch made from the file, results joined by key."""
    client = gemini()
    uris = {}
    for i in range(3):
        pdf = tmp_path / f"invoice-{i}.pdf"
        pdf.write_bytes(b"%PDF-1.4\n" + f"invoice {i}: total {100 + i} EUR".encode() + b"\n%%EOF\n")
        f = client.files.upload(file=str(pdf), config={"mime_type": "application/pdf", "display_name": f"invoice-{i}"})
        assert f.name.startswith("files/") and f.state.value == "ACTIVE" and f.size_bytes == pdf.stat().st_size
        uris[f"invoice-{i}"] = f.uri
    lines = [{"key": key, "request": {"contents": [{"parts": [
        {"fileData": {"fileUri": uri, "mimeType": "application/pdf"}}, {"text": "Extract the total."}]}]}}
        for key, uri in uris.items()]
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    src = client.files.upload(file=str(jsonl), config={"mime_type": "jsonl", "display_name": "invoices"})
    assert src.size_bytes == jsonl.stat().st_size and src.source.value == "UPLOADED"

    job = client.batches.create(model="gemini-2.5-flash", src=src.name, config={"display_name": "invoices"})
    job = wait(client, job.name)
    assert job.state.value == "JOB_STATE_SUCCEEDED", job
    data = client.files.download(file=job.dest.file_name)
    results = {}
    for line in data.decode().splitlines():
        if line.strip():
            results[json.loads(line)["key"]] = json.loads(line)
    assert sorted(results) == sorted(uris), "every invoice's answer, joined by key"
    assert all(r["response"]["usageMetadata"]["promptTokenCount"] > 0 for r in results.values())

    spare = client.files.upload(file=str(jsonl), config={"mime_type": "jsonl", "display_name": "spare"})
    listed = {f.name for f in client.files.list()}
    assert {src.name, spare.name} <= listed and len(listed) >= 5
    # A page at a time (the SDK follows the page tokens): the same files, each once.
    pages = client.files.list(config={"page_size": 1})
    assert pages.config["page_token"], "more than one page of input files"
    paged = [f.name for f in pages]
    assert sorted(paged) == sorted(listed), (paged, listed)
    client.files.delete(name=spare.name)
    assert client.files.get(name=src.name).display_name == "invoices"
    client.files.delete(name=src.name)
    with pytest.raises(errors.APIError) as e:
        client.files.get(name=src.name)
    assert e.value.code == 404


def test_a_jsonl_of_several_chunks_is_read_whole_across_chunk_boundaries(tmp_path):
    """Over the SDK's 8 MiB chunk: lines cut between chunks are read whole."""
    client = gemini()
    pad = "x" * 6000
    lines = [{"key": f"big-{i}", "request": {"contents": [{"parts": [{"text": f"{i} {pad}"}]}],
                                               "generationConfig": {"maxOutputTokens": 8}}} for i in range(1500)]
    jsonl = tmp_path / "big.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert jsonl.stat().st_size > 8 * 1024 * 1024
    src = client.files.upload(file=str(jsonl), config={"mime_type": "application/jsonl"})
    job = wait(client, client.batches.create(model="gemini-2.5-flash-lite", src=src.name).name, secs=180)
    assert job.state.value == "JOB_STATE_SUCCEEDED"
    keys = {json.loads(line)["key"] for line in client.files.download(file=job.dest.file_name).decode().splitlines()
            if line.strip()}
    assert keys == {f"big-{i}" for i in range(1500)}


def test_a_thousand_inline_requests_answer_inline_in_order():
    """The image platform's shape: many small inline requests in one batch."""
    client = gemini()
    src = [{"contents": [{"parts": [{"text": f"prompt {i}"}]}], "metadata": {"key": f"img-{i}"}} for i in range(1000)]
    job = wait(client, client.batches.create(model="gemini-2.5-flash-lite", src=src).name, secs=180)
    assert job.state.value == "JOB_STATE_SUCCEEDED"
    answers = job.dest.inlined_responses
    assert [a.metadata["key"] for a in answers] == [f"img-{i}" for i in range(1000)]
    assert all(f"prompt {i}" in a.response.text for i, a in enumerate(answers))


def raw(url, headers, body=b"", method="POST"):
    """Google's upload protocol by hand: (status, headers, body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_the_upload_protocol_refuses_what_the_sdks_never_send():
    start = {"x-goog-api-key": TOKEN, "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start",
             "x-goog-upload-header-content-length": str(20 * 1024 * 1024),
             "x-goog-upload-header-content-type": "jsonl", "content-type": "application/json"}
    status, headers, _ = raw(BASE + "/gemini/upload/v1beta/files", start, json.dumps({"file": {}}).encode())
    assert status == 200 and headers["x-goog-upload-status"] == "active"
    url = headers["x-goog-upload-url"]
    assert url.startswith(BASE + "/gemini/upload/v1beta/files?upload_id=")

    # A chunk that is not the SDKs' 8 MiB (and not the last) is refused; nothing is taken.
    status, _, body = raw(url, {"x-goog-upload-command": "upload", "x-goog-upload-offset": "0"}, b"{}\n")
    assert (status, json.loads(body)["error"]["status"]) == (400, "INVALID_ARGUMENT")
    status, headers, _ = raw(url, {"x-goog-upload-command": "query"})
    assert (status, headers["x-goog-upload-size-received"]) == (200, "0")
    # Out of place: refused.
    status, _, _ = raw(url, {"x-goog-upload-command": "upload", "x-goog-upload-offset": "5"}, b"x")
    assert status == 400
    # Cancelled: the secret is spent.
    status, headers, _ = raw(url, {"x-goog-upload-command": "cancel"})
    assert (status, headers["x-goog-upload-status"]) == (200, "cancelled")
    status, _, _ = raw(url, {"x-goog-upload-command": "query"})
    assert status == 404
    # A made-up secret is no session.
    status, _, _ = raw(BASE + "/gemini/upload/v1beta/files?upload_id=" + "0" * 64, {"x-goog-upload-command": "query"})
    assert status == 404

    # An empty file, or a display name past 512 bytes, is refused at the start.
    for size, name in [("0", "empty"), ("10", "n" * 513)]:
        headers = dict(start, **{"x-goog-upload-header-content-length": size})
        status, _, body = raw(BASE + "/gemini/upload/v1beta/files", headers,
                              json.dumps({"file": {"displayName": name}}).encode())
        assert status == 400, body
