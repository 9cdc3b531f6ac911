"""A client generated from the worker's own OpenAPI document (openapi-python-client,
run by tests/tests/openapi_e2e.rs on GET /openapi.json) against the real worker:
it submits a job, waits for it and reads its results, and gets a refusal as a
typed error. Nothing here is written by hand but the calls."""

import json
import os
import time

from batchgate_client import AuthenticatedClient
from batchgate_client.api.account import account
from batchgate_client.api.jobs import estimate, get_job, list_jobs, submit_job
from batchgate_client.api.results import job_result, job_results
from batchgate_client.models import ErrorEnvelope, Estimate, JobList, JobView, JsonSubmission, ResultLine, Summary

MODEL = os.environ.get("BATCHGATE_MODEL", "gemini-2.5-flash")
ENDED = {"succeeded", "failed", "expired", "cancelled"}


def client() -> AuthenticatedClient:
    return AuthenticatedClient(base_url=os.environ["BATCHGATE_URL"], token=os.environ["BATCHGATE_TOKEN"])


def submission(n: int) -> JsonSubmission:
    return JsonSubmission.from_dict(
        {
            "model": MODEL,
            "displayName": "generated python client",
            "requests": [
                {"key": f"py-{i}", "request": {"contents": [{"parts": [{"text": f"what is {i} squared?"}]}]}}
                for i in range(n)
            ],
        }
    )


def test_a_generated_client_submits_a_job_waits_and_reads_every_result():
    c = client()
    quote = estimate.sync(client=c, body=submission(3))
    assert isinstance(quote, Estimate), quote
    assert quote.request_count == 3 and quote.quote.batch > 0

    before = account.sync(client=c)
    assert isinstance(before, Summary), before

    answer = submit_job.sync_detailed(client=c, body=submission(3))
    assert answer.status_code == 202, answer.content
    job = answer.parsed
    assert isinstance(job, JobView), answer.content
    assert answer.headers["location"] == f"/v1/jobs/{job.id}"
    assert job.cost.reserved == quote.quote.batch, "the job reserves what the estimate quoted"

    deadline = time.monotonic() + 90
    # The charge lands just after the end; until then the generated model leaves it UNSET.
    while job.state.value not in ENDED or not isinstance(job.cost.charged, int):
        assert time.monotonic() < deadline, f"job {job.id} did not end: {job.to_dict()}"
        time.sleep(0.3)
        job = get_job.sync(job.id, client=c)
        assert isinstance(job, JobView), job
    assert job.state.value == "succeeded", job.to_dict()
    assert job.counts.succeeded == 3 and job.results_ready

    # Results are NDJSON: the generated call hands back the bytes.
    whole = job_results.sync_detailed(job.id, client=c)
    assert whole.status_code == 200
    lines = [json.loads(line) for line in whole.content.decode().splitlines() if line.strip()]
    assert sorted(line["key"] for line in lines) == ["py-0", "py-1", "py-2"]
    assert all("response" in line for line in lines), lines

    one = job_result.sync(job.id, "py-1", client=c)
    assert isinstance(one, ResultLine), one
    assert one.key == "py-1" and one.response is not None

    listed = list_jobs.sync(client=c, limit=5)
    assert isinstance(listed, JobList)
    assert job.id in [j.id for j in listed.jobs]

    after = account.sync(client=c)
    assert after.balance == before.balance - job.cost.charged, "charged once, what the job says"


def test_a_refusal_reaches_the_generated_client_as_the_typed_error_envelope():
    c = client()
    missing = get_job.sync_detailed("0" * 64, client=c)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, ErrorEnvelope), missing.content
    assert missing.parsed.error.code == "not_found"

    # A request of the documented shape that the worker's checks refuse (an unknown part field).
    line = {"key": "bad", "request": {"contents": [{"parts": [{"bogus": 1}]}]}}
    bad = submit_job.sync_detailed(client=c, body=JsonSubmission.from_dict({"model": MODEL, "requests": [line]}))
    assert bad.status_code == 400, bad.content
    assert isinstance(bad.parsed, ErrorEnvelope)
    assert bad.parsed.error.code == "invalid_requests"
    assert bad.parsed.error.details is not None
