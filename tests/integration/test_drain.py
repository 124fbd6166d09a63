"""vLLM's preStop drain as rendered, run against an emulated replica over real HTTP: it holds the pod while streams
are in flight and lets it go as soon as the last one ends; it reads real vLLM 0.20.2's exposition as well."""

import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from serving.emulator.replica import Faults
from serving.k8s.render import ServingSettings, prestop_script
from serving.profiles import load_profile
from tests.helpers import SHARED_DATA, EmulatorServer

pytestmark = pytest.mark.integration
REAL_SCRAPE = SHARED_DATA / "reference" / "vllm-0.20.2-metrics.txt"


def completion(url: str, model: str, tokens: int) -> None:
    body = (
        f'{{"model": "{model}", "prompt": "a b c d", "max_tokens": {tokens}, "ignore_eos": true, "stream": true}}'
    ).encode()
    request = urllib.request.Request(f"{url}/v1/completions", body, {"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=120).read()


def drain(port: int) -> subprocess.Popen:
    script = prestop_script(load_profile("llama-3.1-8b-h100"), ServingSettings(), port=port, endpoint_drain_s=0)
    return subprocess.Popen([sys.executable, "-c", script])


def test_the_drain_waits_for_the_streams_in_flight_and_no_longer():
    with EmulatorServer(faults=Faults(slow_factor=20.0)) as emulator:  # a few seconds per answer
        streams = [threading.Thread(target=completion, args=(emulator.url, emulator.model, 60)) for _ in range(3)]
        for stream in streams:
            stream.start()
        time.sleep(0.5)
        started = time.monotonic()
        hold = drain(emulator.port)
        for stream in streams:
            stream.join(120)
        answered = time.monotonic() - started
        assert hold.wait(30) == 0
        held = time.monotonic() - started
        assert answered > 2.0, "the answers were too short to tell a drain from none"
        assert answered <= held <= answered + 3.0  # polled every 2 s: it leaves at the first poll with nothing held
        idle = drain(emulator.port)
        started = time.monotonic()
        assert idle.wait(30) == 0 and time.monotonic() - started < 2.0  # nothing in flight: at once


def test_the_drain_reads_real_vllm_exposition(tmp_path):
    """vLLM 0.20.2's own /metrics (with vllm:num_requests_waiting_by_reason beside the gauge): nothing held, so the
    drain ends at its first read."""
    import http.server

    text = REAL_SCRAPE.read_bytes()

    class Scrape(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scrape)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        assert drain(server.server_address[1]).wait(30) == 0 and time.monotonic() - started < 2.0
    finally:
        server.shutdown()
        server.server_close()
