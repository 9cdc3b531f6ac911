"""Starts the gemini-emulator binary for the conformance suite.

GEMINI_EMULATOR_BIN names the binary (cargo xtask passes it). The emulator runs
one emulated hour per real second so batches finish in milliseconds.
"""
import json
import os
import subprocess
import urllib.request

import pytest
from google import genai
from google.genai import types

API_KEY = "conformance-key"


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
    emulator.control("/reset")
    return emulator


@pytest.fixture
def client(emu):
    # Exactly how a user points the official SDK at another endpoint.
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url))
