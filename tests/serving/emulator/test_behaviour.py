"""Wall-clock behaviour: client-seen timing agrees with the engine model; faults; disconnects; busy GPU."""

import json
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.engine.steptime import BatchShape, StepTimeModel
from tests.helpers import EmulatorServer, timed_stream


def stream_timing(server, prompt_tokens=100, max_tokens=40, word="w"):
    body = {
        "model": server.model,
        "prompt": f"{word} " * prompt_tokens,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }
    return timed_stream(server.port, "/v1/completions", body)


def test_client_itl_matches_engine_step_time():
    with EmulatorServer() as s:
        runs = [stream_timing(s, prompt_tokens=100, max_tokens=60) for _ in range(5)]
        gaps = [g for r in runs for g in r[1]]
        expected_itl = StepTimeModel(s.profile).duration(BatchShape.of([(1, 130)]))
        assert statistics.median(gaps) == pytest.approx(expected_itl, abs=0.002)


def test_client_ttft_grows_with_the_prompt_as_the_engine_prefill_does():
    """Short and long prompts alternate, so HTTP and a loaded machine's delays cancel in the difference; each
    prompt has its own word, so none hits the prefix cache."""
    with EmulatorServer() as s:
        short, long = [], []
        for i in range(7):
            short.append(stream_timing(s, prompt_tokens=100, max_tokens=2, word=f"s{i}")[0])
            long.append(stream_timing(s, prompt_tokens=4000, max_tokens=2, word=f"l{i}")[0])
        model = StepTimeModel(s.profile)
        prefill_short = model.duration(BatchShape.of([(100, 0)]))
        prefill_long = model.duration(BatchShape.of([(4000, 0)]))
        assert statistics.median(short) >= prefill_short  # the emulator never answers before its engine could
        growth = statistics.median(long) - statistics.median(short)
        assert growth == pytest.approx(prefill_long - prefill_short, rel=0.1)


def test_slow_factor_fault_slows_steps():
    with EmulatorServer(faults={"slow_factor": 4.0}) as s:
        _, gaps = stream_timing(s, max_tokens=20)
        decode = BatchShape.of([(1, 110)])
        assert statistics.median(gaps) == pytest.approx(4 * StepTimeModel(s.profile).duration(decode), rel=0.2)


def test_error_rate_fault_and_runtime_fault_changes():
    with EmulatorServer() as s:
        body = {"model": s.model, "prompt": "hi", "max_tokens": 2}
        assert httpx.post(f"{s.url}/v1/completions", json=body).status_code == 200
        assert httpx.post(f"{s.url}/admin/faults", json={"error_rate": 1.0}).status_code == 200
        r = httpx.post(f"{s.url}/v1/completions", json=body)
        assert r.status_code == 500 and "injected" in r.json()["error"]["message"]
        assert httpx.post(f"{s.url}/admin/faults", json={"error_rate": 7}).status_code == 400
        httpx.post(f"{s.url}/admin/faults", json={})
        assert httpx.post(f"{s.url}/v1/completions", json=body).status_code == 200


def test_stall_fault_freezes_then_resumes():
    with EmulatorServer() as s:
        httpx.post(f"{s.url}/admin/faults", json={"stall_s": 0.6})
        t0 = time.perf_counter()
        r = httpx.post(
            f"{s.url}/v1/completions",
            json={"model": s.model, "prompt": "hi", "max_tokens": 3, "ignore_eos": True},
            timeout=10,
        )
        assert r.status_code == 200 and time.perf_counter() - t0 >= 0.5


def test_client_disconnect_aborts_and_frees_kv():
    with EmulatorServer() as s:
        body = json.dumps(
            {"model": s.model, "prompt": "w " * 500, "max_tokens": 5000, "ignore_eos": True, "stream": True}
        ).encode()
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(
                b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
                % (len(body), body)
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.2)
        deadline = time.time() + 5
        while time.time() < deadline:
            fams = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{s.url}/metrics").text)}
            abort = next(
                x.value for x in fams["vllm:request_success"].samples if x.labels["finished_reason"] == "abort"
            )
            if abort == 1:
                break
            time.sleep(0.05)
        assert abort == 1
        assert fams["vllm:num_requests_running"].samples[0].value == 0
        assert fams["vllm:kv_cache_usage_perc"].samples[0].value == 0


def test_gpu_busy_under_load_and_idle_after():
    with EmulatorServer() as s:
        with httpx.Client(timeout=30) as c:
            for _ in range(3):
                c.post(
                    f"{s.url}/v1/completions",
                    json={"model": s.model, "prompt": "w " * 50, "max_tokens": 60, "ignore_eos": True},
                )
            util = lambda: (
                next(
                    f
                    for f in text_string_to_metric_families(c.get(f"{s.gpu_url}/metrics").text)
                    if f.name == "DCGM_FI_DEV_GPU_UTIL"
                )
                .samples[0]
                .value
            )
            busy = util()
            time.sleep(1.1)
            assert busy > 30 and util() == 0


def test_prefix_cache_hits_on_shared_prompt_prefix():
    with EmulatorServer() as s:
        shared = "w " * 160
        for tail in ("alpha beta", "gamma delta"):
            httpx.post(
                f"{s.url}/v1/completions", json={"model": s.model, "prompt": shared + tail, "max_tokens": 2}, timeout=30
            )
        fams = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{s.url}/metrics").text)}
        hits = next(x.value for x in fams["vllm:prefix_cache_hits"].samples if x.name.endswith("_total"))
        assert hits == 160


def test_engine_failure_fails_open_requests_instead_of_hanging():
    with EmulatorServer() as s:

        def broken_step():
            raise RuntimeError("planted bug")

        s.replica.engine.step = broken_step
        r = httpx.post(f"{s.url}/v1/completions", json={"model": s.model, "prompt": "x", "max_tokens": 3}, timeout=10)
        assert r.status_code == 500 and "engine failure" in r.json()["error"]["message"]
        assert httpx.get(f"{s.url}/ready").status_code == 503


def test_the_profiles_request_overhead_comes_before_the_first_token():
    """A profile with real vLLM's request overhead (HTTP) and cost per prompt token (tokenization) set: the answer
    comes that much later, 0.1 s and 0.1 s for each of the prompt's three tokens."""
    server = EmulatorServer()
    server.profile = server.profile.with_changes(efficiency={"request_overhead_s": 0.1, "request_token_s": 0.1})
    with server:
        body = {"model": server.model, "prompt": "a b c", "max_tokens": 2}
        started = time.monotonic()
        assert httpx.post(f"{server.url}/v1/completions", json=body, timeout=10).status_code == 200
        assert time.monotonic() - started >= 0.4
        assert httpx.get(f"{server.url}/admin/state").json()["in_flight"] == 0
        # a client that leaves before the engine took its request: nothing reaches the engine, nothing is held
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            payload = json.dumps({**body, "stream": True, "max_tokens": 4000, "ignore_eos": True}).encode()
            head = f"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {len(payload)}\r\n\r\n"
            sock.sendall(head.encode() + payload)
            time.sleep(0.1)
        time.sleep(0.6)
        state = httpx.get(f"{server.url}/admin/state").json()
        assert state["in_flight"] == 0 and not server.replica.engine.has_work


def _second_ttft(async_scheduling: bool) -> tuple[float, float]:
    """A second prompt sent while the first is prefilled (every step 40 times as slow): its TTFT, and a decode
    step of the first alone."""
    server = EmulatorServer(faults={"slow_factor": 40.0})
    server.profile = server.profile.with_changes(scheduler={"async_scheduling": async_scheduling})
    with server, ThreadPoolExecutor(2) as pool:
        first = pool.submit(stream_timing, server, prompt_tokens=1000, max_tokens=6, word="a")
        time.sleep(0.3)
        second = stream_timing(server, prompt_tokens=10, max_tokens=2, word="b")[0]
        first.result()
        decode = 40.0 * StepTimeModel(server.profile).duration(BatchShape.of([(1, 1001)]))
    return second, decode


def test_asynchronous_scheduling_makes_a_request_reaching_a_busy_emulator_wait_one_more_step():
    """vLLM chose the step after the first prompt's prefill while that prefill ran: the second prompt, which came
    meanwhile, joins only the step after it, one decode step of the first later than a synchronous engine."""
    sync_ttft, decode = _second_ttft(False)
    async_ttft, _ = _second_ttft(True)
    assert async_ttft - sync_ttft == pytest.approx(decode, rel=0.3)
