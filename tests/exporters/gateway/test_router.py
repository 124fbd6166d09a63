"""The minimal router: least outstanding requests, unbuffered streaming, retries before the first byte, counters."""

import json
import socket
import threading

import httpx
import pytest

from tests.helpers import EmulatorServer, RouterServer, metric_value, sse_events, timed_stream


@pytest.fixture(scope="module")
def backends():
    with EmulatorServer() as a, EmulatorServer() as b:
        yield a, b


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed again: connections are refused


def test_streaming_passes_through_with_usage_and_counters(backends):
    a, b = backends
    with RouterServer([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as router:
        body = {"model": a.model, "prompt": "w " * 30, "max_tokens": 25, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True}}
        r = httpx.post(f"{router.url}/v1/completions", json=body, timeout=30)
        events = sse_events(r.text)
        assert events[-1] == "[DONE]"
        docs = [json.loads(e) for e in events[:-1]]
        assert sum(1 for d in docs if d["choices"]) == 25
        assert docs[-1]["usage"]["completion_tokens"] == 25
        del body["stream_options"]
        httpx.post(f"{router.url}/v1/completions", json=body, timeout=30)  # no usage: tokens counted from events
        chat = {"model": a.model, "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 4, "ignore_eos": True}
        httpx.post(f"{router.url}/v1/chat/completions", json=chat, timeout=30)
        text = httpx.get(f"{router.url}/metrics").text
        assert metric_value(text, "headroom_gateway_requests_total", model=a.model, status="200") == 3
        assert metric_value(text, "headroom_gateway_output_tokens_total", model=a.model) == 25 + 25 + 4
        assert metric_value(text, "headroom_gateway_prompt_tokens_total", model=a.model) == 30 + 30 + 3


def test_streaming_is_not_buffered(backends):
    a, _ = backends
    with RouterServer([f"127.0.0.1:{a.port}"]) as router:
        body = {"model": a.model, "prompt": "w " * 10, "max_tokens": 30, "ignore_eos": True, "stream": True}
        ttft, gaps = timed_stream(router.port, "/v1/completions", body)
        assert ttft < 0.05
        assert len(gaps) == 29 and sorted(gaps)[len(gaps) // 2] > 0.004  # tokens arrive one step apart, not at once


def test_least_outstanding_spreads_concurrent_streams(backends):
    a, b = backends
    before = [metric_value(httpx.get(f"{s.url}/metrics").text, "vllm:request_success_total") for s in (a, b)]
    with RouterServer([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as router:
        body = {"model": a.model, "prompt": "w " * 10, "max_tokens": 80, "ignore_eos": True}
        threads = [threading.Thread(target=httpx.post, args=(f"{router.url}/v1/completions",), kwargs={"json": body, "timeout": 60})
                   for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    after = [metric_value(httpx.get(f"{s.url}/metrics").text, "vllm:request_success_total") for s in (a, b)]
    assert [x - y for x, y in zip(after, before)] == [5, 5]


def test_retries_refused_and_starting_backends_before_first_byte(backends):
    a, _ = backends
    with EmulatorServer(cold_start_s=60) as cold:
        with RouterServer([dead_address(), f"127.0.0.1:{cold.port}", f"127.0.0.1:{a.port}"]) as router:
            for _ in range(6):
                r = httpx.post(f"{router.url}/v1/completions", json={"model": a.model, "prompt": "x", "max_tokens": 2}, timeout=30)
                assert r.status_code == 200
            assert metric_value(httpx.get(f"{router.url}/metrics").text, "headroom_gateway_retries_total") > 0


def test_no_backend_gives_503_with_retry_after():
    with RouterServer([]) as router:
        r = httpx.post(f"{router.url}/v1/completions", json={"model": "m", "prompt": "x"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "no backend" in r.json()["error"]["message"]
        assert httpx.get(f"{router.url}/ready").status_code == 503


def test_client_errors_pass_through_unretried(backends):
    a, _ = backends
    with RouterServer([f"127.0.0.1:{a.port}"]) as router:
        r = httpx.post(f"{router.url}/v1/completions", json={"model": "nope", "prompt": "x"})
        assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
        assert metric_value(httpx.get(f"{router.url}/metrics").text, "headroom_gateway_requests_total", model="unknown", status="404") == 1


def test_backend_dying_mid_stream_cuts_the_client_cleanly():
    with EmulatorServer() as doomed:
        with RouterServer([f"127.0.0.1:{doomed.port}"]) as router:
            body = {"model": doomed.model, "prompt": "x", "max_tokens": 2000, "ignore_eos": True, "stream": True}
            got = []
            with pytest.raises(httpx.HTTPError):
                with httpx.stream("POST", f"{router.url}/v1/completions", json=body, timeout=30) as r:
                    for line in r.iter_lines():
                        got.append(line)
                        if len(got) == 10:  # kill the backend's connections mid-stream
                            doomed.thread.loop.call_soon_threadsafe(_close_all, doomed)
            assert 10 <= len(got) < 4000
            text = httpx.get(f"{router.url}/metrics").text
            assert metric_value(text, "headroom_gateway_requests_total", status="502") == 1


def _close_all(server):
    for live in list(server.replica._live):
        live.resp.abort()


def test_event_counting_across_chunk_boundaries():
    from exporters.gateway.router import _TOKEN_EVENT, _count_new

    stream = b'data: {"a": 1, "finish_reason": null}\n\n' * 7
    for cut in range(1, len(stream)):
        first, second = stream[:cut], stream[cut:]
        assert _count_new(b"", first, _TOKEN_EVENT) + _count_new(first, second, _TOKEN_EVENT) == 7
