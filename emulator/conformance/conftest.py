"""Starts the gemini-emulator binary for the conformance suite.

GEMINI_EMULATOR_BIN names the binary (cargo xtask passes it). The emulator runs
one emulated hour per real second so batches finish in milliseconds.

Run a second time against batchgate's Gemini drop-in (tests/tests/dropin_e2e.rs):
BATCHGATE_GEMINI_URL is the worker's `/gemini`, EMULATOR_URL the emulator behind
it and BATCHGATE_ADMIN_TOKEN mints each test a fresh account with credits. The
SDK then changes only its base URL and key; tests of the emulator itself (what
it logs of the SDK's chunks, Gemini's 429 reaching the SDK) are skipped there.
"""
import json
import os
import subprocess
import urllib.request

import pytest
from google import genai
from google.genai import types

API_KEY = "conformance-key"
GATE = os.environ.get("BATCHGATE_GEMINI_URL")
emulator_only = pytest.mark.skipif(GATE is not None, reason="about the emulator itself, not the drop-in")


class Emulator:
    def __init__(self, url):
        self.url = url

    def control(self, path, body=None, method="POST"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_emulator" + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"{}")

    def requests(self):
        return self.control("/requests", method="GET")["requests"]


@pytest.fixture(scope="session")
def emulator():
    if GATE:
        yield Emulator(os.environ["EMULATOR_URL"])
        return
    binary = os.environ.get("GEMINI_EMULATOR_BIN", "target/debug/gemini-emulator")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--api-key", API_KEY, "--time-scale", "3600"],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, f"emulator did not start: {line!r}"
    yield Emulator(line.rsplit(" ", 1)[1].strip())
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def emu(emulator):
    if GATE:  # the worker behind the drop-in keeps its own batches at the emulator: no reset
        emulator.control("/config", {"stickNewBatches": False})
    else:
        emulator.control("/reset")
    return emulator


def batchgate_token():
    """A fresh account with credits, and a token for it (through the admin API)."""
    base = GATE.removesuffix("/gemini")
    account = "conformance-" + os.urandom(6).hex()

    def admin(path, body):
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
            "authorization": "Bearer " + os.environ["BATCHGATE_ADMIN_TOKEN"], "content-type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    admin(f"/v1/admin/accounts/{account}/grants", {"amount": 10**15})
    return admin("/v1/admin/tokens", {"account": account})["token"]


@pytest.fixture
def client(emu):
    # Exactly how a user points the official SDK at another endpoint.
    if GATE:
        return genai.Client(api_key=batchgate_token(), http_options=types.HttpOptions(base_url=GATE))
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url))
