"""The gateway: least outstanding requests, unbuffered streaming, retries before the first byte, token accounting."""

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from tests.helpers import EmulatorServer, GatewayServer, StreamBackend, metric_value, sse_events, timed_stream


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
    with GatewayServer([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as gw:
        body = {
            "model": a.model,
            "prompt": "w " * 30,
            "max_tokens": 25,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        r = httpx.post(f"{gw.url}/v1/completions", json=body, timeout=30)
        events = sse_events(r.text)
        assert events[-1] == "[DONE]"
        docs = [json.loads(e) for e in events[:-1]]
        assert sum(1 for d in docs if d["choices"]) == 25
        assert docs[-1]["usage"]["completion_tokens"] == 25
        del body["stream_options"]
        httpx.post(f"{gw.url}/v1/completions", json=body, timeout=30)  # no usage: tokens counted from events
        chat = {
            "model": a.model,
            "messages": [{"role": "user", "content": "a b c"}],
            "max_tokens": 4,
            "ignore_eos": True,
        }
        httpx.post(f"{gw.url}/v1/chat/completions", json=chat, timeout=30)
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_requests_total", model=a.model, status="200") == 3
        assert metric_value(text, "headroom_gateway_output_tokens_total", model=a.model) == 25 + 25 + 4
        assert metric_value(text, "headroom_gateway_prompt_tokens_total", model=a.model) == 30 + 30 + 3


def test_streaming_is_not_buffered(backends):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"]) as gw:
        body = {"model": a.model, "prompt": "w " * 10, "max_tokens": 30, "ignore_eos": True, "stream": True}
        ttft, gaps = timed_stream(gw.port, "/v1/completions", body)
        assert ttft < 0.05
        assert len(gaps) == 29 and sorted(gaps)[len(gaps) // 2] > 0.004  # tokens arrive one step apart, not at once


def test_least_outstanding_spreads_concurrent_streams(backends):
    a, b = backends
    before = [metric_value(httpx.get(f"{s.url}/metrics").text, "vllm:request_success_total") for s in (a, b)]
    with GatewayServer([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as gw:
        body = {"model": a.model, "prompt": "w " * 10, "max_tokens": 80, "ignore_eos": True}
        threads = [
            threading.Thread(
                target=httpx.post, args=(f"{gw.url}/v1/completions",), kwargs={"json": body, "timeout": 60}
            )
            for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    after = [metric_value(httpx.get(f"{s.url}/metrics").text, "vllm:request_success_total") for s in (a, b)]
    assert [x - y for x, y in zip(after, before)] == [5, 5]


def test_retries_refused_and_starting_backends_before_first_byte(backends):
    a, _ = backends
    with EmulatorServer(cold_start_s=60) as cold:
        with GatewayServer([dead_address(), f"127.0.0.1:{cold.port}", f"127.0.0.1:{a.port}"]) as gw:
            for _ in range(6):
                r = httpx.post(
                    f"{gw.url}/v1/completions", json={"model": a.model, "prompt": "x", "max_tokens": 2}, timeout=30
                )
                assert r.status_code == 200
            assert metric_value(httpx.get(f"{gw.url}/metrics").text, "headroom_gateway_retries_total") > 0


def test_failure_counters_exist_at_zero_before_the_first_failure(backends):
    """A counter born at 1 is invisible to rate(): a backend's failures and a model's retries start at 0."""
    from prometheus_client.parser import text_string_to_metric_families

    a, _ = backends
    served = lambda samples: any(
        name == "headroom_gateway_requests_total" and ("model", a.model) in labels for name, labels in samples
    )
    with GatewayServer([f"127.0.0.1:{a.port}"]) as gw:
        deadline = time.monotonic() + 15
        while (
            True
        ):  # until the gateway has learnt the backend's model (its first health check): before, it is 'unknown'
            httpx.post(f"{gw.url}/v1/completions", json={"model": a.model, "prompt": "x", "max_tokens": 2}, timeout=30)
            text = httpx.get(f"{gw.url}/metrics").text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
            }
            if served(samples) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    backend = f"127.0.0.1:{a.port}"
    for phase in ("connect", "mid_stream"):
        key = ("headroom_gateway_backend_failures_total", (("backend", backend), ("phase", phase)))
        assert samples.get(key) == 0
    assert samples.get(("headroom_gateway_retries_total", (("model", a.model),))) == 0


def test_a_request_whose_only_backend_refuses_waits_for_the_next_one(backends):
    """Its only backend refuses the connection (it is taken out of rotation): the request, which no backend has seen,
    waits in the queue and is served by the replica discovered a second later, not answered 503."""
    a, _ = backends
    with GatewayServer([dead_address()]) as gw:
        dead = gw.backends[0]
        threading.Timer(1.0, gw.set_backends, ([dead, f"127.0.0.1:{a.port}"],)).start()
        start = time.monotonic()
        r = httpx.post(f"{gw.url}/v1/completions", json={"model": a.model, "prompt": "x", "max_tokens": 2}, timeout=30)
        assert r.status_code == 200, r.text
        assert time.monotonic() - start >= 0.9  # it waited for the new backend
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_backend_failures_total", backend=dead, phase="connect") == 1
        assert metric_value(text, "headroom_gateway_requests_total", model=a.model, status="503") == 0


def test_no_backend_gives_503_with_retry_after():
    with GatewayServer([]) as gw:
        r = httpx.post(f"{gw.url}/v1/completions", json={"model": "m", "prompt": "x"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "no backend" in r.json()["error"]["message"]
        assert httpx.get(f"{gw.url}/ready").status_code == 503


def wait_for_models(gw, timeout_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        names = [m["id"] for m in httpx.get(f"{gw.url}/v1/models").json()["data"]]
        if names:
            return names
        time.sleep(0.05)
    raise TimeoutError("the gateway learned no models from its backends' health checks")


def test_unknown_model_is_refused_before_any_backend(backends):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"]) as gw:
        assert wait_for_models(gw) == [a.model]
        seen_before = metric_value(httpx.get(f"{a.url}/metrics").text, "http_requests_total", handler="/v1/completions")
        r = httpx.post(f"{gw.url}/v1/completions", json={"model": "nope", "prompt": "x"})
        assert r.status_code == 404 and r.json()["error"]["message"] == "The model `nope` does not exist."
        assert r.json()["error"]["param"] == "model"
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_rejections_total", model="", reason="unknown_model") == 1
        assert (
            metric_value(httpx.get(f"{a.url}/metrics").text, "http_requests_total", handler="/v1/completions")
            == seen_before
        )


def test_backend_dying_mid_stream_ends_the_stream_with_an_error_event():
    with EmulatorServer() as doomed, GatewayServer([f"127.0.0.1:{doomed.port}"]) as gw:
        body = {"model": doomed.model, "prompt": "x", "max_tokens": 2000, "ignore_eos": True, "stream": True}
        got = []
        with httpx.stream("POST", f"{gw.url}/v1/completions", json=body, timeout=30) as r:
            for line in r.iter_lines():
                if line:
                    got.append(line)
                if len(got) == 10:  # kill the backend's connections mid-stream
                    doomed.thread.loop.call_soon_threadsafe(_close_all, doomed)
        assert 10 <= len(got) < 2000
        last = json.loads(got[-1].removeprefix("data: "))
        assert last["error"]["code"] == 502 and "failed after it started" in last["error"]["message"]
        assert "[DONE]" not in got[-1]  # the client can tell it from a finished stream
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_requests_total", status="502") == 1
        assert metric_value(text, "headroom_gateway_backend_failures_total", phase="mid_stream") == 1
        assert metric_value(text, "headroom_gateway_retries_total") == 0  # bytes had reached the client: never resent


def _close_all(server):
    for live in list(server.replica._live):
        live.resp.abort()


def keys_file(tmp_path, count: int = 2) -> str:
    path = tmp_path / "keys.yaml"
    path.write_text("".join(f"sk-tenant-{i:04d}: tenant-{i}\n" for i in range(count)))
    return str(path)


def bearer(i: int) -> dict:
    return {"authorization": f"Bearer sk-tenant-{i:04d}"}


# what a recording backend streams: odd chunk boundaries (an event split in two, two events in one chunk), UTF-8
SCRIPTED_CHUNKS = [
    b'data: {"id":"x","choices":[{"index":0,"text":"h\xc3\xa9',
    b'llo","finish_reason":null}]}\n\n',
    (
        b'data: {"id":"x","choices":[{"index":0,"text":" w","finish_reason":null}]}\n\ndata: {"id":"x","choices":'
        b'[{"index":0,"text":"orld","finish_reason":"length"}]}\n\n'
    ),
    b"data: [DONE]\n\n",
]


async def scripted(request, resp):
    """Streams SCRIPTED_CHUNKS with pauses."""
    import asyncio

    resp.start_stream(200, "text/event-stream")
    for chunk in SCRIPTED_CHUNKS:
        resp.write(chunk)
        await asyncio.sleep(0.01)
    resp.end()


async def paced(request, resp):
    """Answers after the body's `first_s`, then streams `max_tokens` token events `gap_s` apart (or, unstreamed,
    one answer after all of it), so that a test sets the latencies the gateway measures."""
    import asyncio

    body = json.loads(request.body)
    tokens, event = body["max_tokens"], b'data: {"choices":[{"index":0,"text":"w","finish_reason":null}]}\n\n'
    await asyncio.sleep(body["first_s"])
    if not body.get("stream"):
        await asyncio.sleep(body["gap_s"] * (tokens - 1))
        usage = {"prompt_tokens": 1, "total_tokens": 1 + tokens, "completion_tokens": tokens}
        return resp.send(200, json.dumps({"choices": [{"text": "w " * tokens}], "usage": usage}).encode())
    resp.start_stream(200, "text/event-stream")
    for i in range(tokens):
        if i:
            await asyncio.sleep(body["gap_s"])
        resp.write(event)
    resp.write(b"data: [DONE]\n\n")
    resp.end()


class ScriptedBackend:
    """A backend over real HTTP that answers generation requests with `handle(request, responder)` and /v1/models
    with the one model `scripted` (after `models_delay_s`)."""

    def __init__(self, handle=scripted, models_delay_s: float = 0.0):
        self.handle, self.models_delay_s = handle, models_delay_s

    def __enter__(self):
        from serving.common.http.server import serve
        from tests.helpers import LoopThread

        async def handle(request, resp):
            if request.path == "/v1/models":
                await asyncio.sleep(self.models_delay_s)
                return resp.send(200, json.dumps({"data": [{"id": "scripted"}]}).encode())
            return await self.handle(request, resp)

        self.thread = LoopThread()

        async def start():
            self.server = await serve(handle, "127.0.0.1", 0)
            return self.server.port

        self.port = self.thread.call(start())
        return self

    def __exit__(self, *exc):
        async def stop():  # on the server's own loop: asyncio servers are not thread-safe
            self.server.close()

        self.thread.call(stop())
        self.thread.close()


def test_streamed_bytes_equal_the_backends():
    with ScriptedBackend() as backend, GatewayServer([f"127.0.0.1:{backend.port}"]) as gw:
        body = {"model": "scripted", "prompt": "x", "stream": True}
        with httpx.stream("POST", f"{gw.url}/v1/completions", json=body, timeout=30) as r:
            received = b"".join(r.iter_raw())
        assert received == b"".join(SCRIPTED_CHUNKS)
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_time_to_first_token_seconds_count", model="scripted") == 1
        assert metric_value(text, "headroom_gateway_inter_token_latency_seconds_count", model="scripted") == 2
        assert (
            metric_value(text, "headroom_gateway_output_tokens_total", model="scripted") == 3
        )  # no usage: events counted


def test_auth_and_per_tenant_token_accounting(backends, tmp_path):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"], keys_file=keys_file(tmp_path)) as gw:
        body = {
            "model": a.model,
            "prompt": "w " * 12,
            "max_tokens": 9,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        assert httpx.post(f"{gw.url}/v1/completions", json=body).status_code == 401
        wrong = httpx.post(f"{gw.url}/v1/completions", json=body, headers={"authorization": "Bearer sk-nobody-00"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
        usage = []
        for i in (0, 1, 1):
            events = sse_events(httpx.post(f"{gw.url}/v1/completions", json=body, headers=bearer(i), timeout=30).text)
            usage.append((i, json.loads(events[-2])["usage"]))
        text = httpx.get(f"{gw.url}/metrics").text
        for i in (0, 1):
            mine = [u for t, u in usage if t == i]
            assert metric_value(text, "headroom_gateway_output_tokens_total", tenant=f"tenant-{i}") == sum(
                u["completion_tokens"] for u in mine
            )
            assert metric_value(text, "headroom_gateway_prompt_tokens_total", tenant=f"tenant-{i}") == sum(
                u["prompt_tokens"] for u in mine
            )
        assert metric_value(text, "headroom_gateway_rejections_total", reason="unauthorized") == 2
        assert metric_value(text, "headroom_gateway_time_to_first_token_seconds_count", tenant="tenant-1") == 2


def test_bad_requests_get_openai_errors_before_any_backend(backends):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"], limits={"max_body_bytes": 4096}) as gw:
        seen_before = metric_value(httpx.get(f"{a.url}/metrics").text, "http_requests_total", handler="/v1/completions")
        cases = [
            (b"{not json", 400, "not valid JSON"),
            (b"[1, 2]", 400, "JSON object"),
            (b'{"prompt": "x"}', 400, "names no model"),
            (json.dumps({"model": a.model, "prompt": "w " * 4000}).encode(), 413, "exceeds 4096 bytes"),
        ]
        for raw, status, message in cases:
            r = httpx.post(f"{gw.url}/v1/completions", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == status and message in r.json()["error"]["message"], (raw[:20], r.text)
        assert (
            metric_value(httpx.get(f"{a.url}/metrics").text, "http_requests_total", handler="/v1/completions")
            == seen_before
        )


def test_full_queue_answers_429_and_two_tenants_share_the_backend(backends, tmp_path):
    a, _ = backends
    config = {
        "keys_file": keys_file(tmp_path),
        "max_in_flight_per_backend": 2,
        "default_limits": {"max_queue": 6, "queue_timeout_s": 60},
    }
    with GatewayServer([f"127.0.0.1:{a.port}"], **config) as gw:
        body = {"model": a.model, "prompt": "w " * 10, "max_tokens": 60, "ignore_eos": True}
        done = []

        def send(i):
            r = httpx.post(f"{gw.url}/v1/completions", json=body, headers=bearer(i), timeout=60)
            done.append((i, r.status_code, r.headers.get("retry-after"), time.monotonic()))

        flood = [threading.Thread(target=send, args=(0,)) for _ in range(12)]  # tenant 0: 12 at once
        for t in flood:
            t.start()
        time.sleep(0.3)
        polite = [threading.Thread(target=send, args=(1,)) for _ in range(3)]  # tenant 1 arrives later
        for t in polite:
            t.start()
        for t in flood + polite:
            t.join()
        rejected = [d for d in done if d[1] == 429]
        assert rejected and all(d[2] is not None and int(d[2]) >= 1 for d in rejected)
        assert {d[1] for d in done} <= {200, 429} and len(done) == 15  # every request answered, none lost
        assert all(d[1] == 200 for d in done if d[0] == 1)  # tenant 1 got in despite tenant 0's flood
        ok0 = sorted(d[3] for d in done if d[0] == 0 and d[1] == 200)
        assert min(d[3] for d in done if d[0] == 1) < ok0[-1]  # and did not wait behind all of tenant 0's
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_requests_total", status="429") == len(rejected)
        assert metric_value(text, "headroom_gateway_queue_wait_seconds_count") == 15 - len(rejected)


def test_tenant_label_cap_holds_under_many_keys(backends, tmp_path):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"], keys_file=keys_file(tmp_path, 40), tenant_label_cap=5) as gw:
        body = {"model": a.model, "prompt": "x", "max_tokens": 1}
        with httpx.Client(timeout=30) as client:
            for i in range(40):
                assert client.post(f"{gw.url}/v1/completions", json=body, headers=bearer(i)).status_code == 200
        text = httpx.get(f"{gw.url}/metrics").text
        tenants = {
            s.labels["tenant"]
            for f in __import__("prometheus_client.parser").parser.text_string_to_metric_families(text)
            for s in f.samples
            if "tenant" in s.labels
        }
        assert len(tenants - {"other"}) <= 5 and "other" in tenants
        assert metric_value(text, "headroom_gateway_requests_total", status="200") == 40


def test_prefix_affinity_keeps_a_prompt_prefix_on_one_replica(backends):
    a, b = backends
    count = lambda: [metric_value(httpx.get(f"{s.url}/metrics").text, "vllm:request_success_total") for s in (a, b)]
    with GatewayServer(
        [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"], routing="prefix_affinity", prefix_affinity_chars=64
    ) as gw:
        spread = []
        for prefix in ("system: you are a pirate. ", "system: you answer in French. ", "system: be brief. "):
            before = count()
            for i in range(4):
                body = {"model": a.model, "prompt": prefix * 4 + f"question {i}", "max_tokens": 2}
                assert httpx.post(f"{gw.url}/v1/completions", json=body, timeout=30).status_code == 200
            spread.append(sorted(x - y for x, y in zip(count(), before)))
        assert all(s == [0, 4] for s in spread)  # each prefix stayed on one replica


async def closes_reused_connections(reader, writer):
    """A backend that answers the first request on each connection and closes the connection, unanswered, on the
    next one: what a reused keep-alive connection meets when the backend dropped it meanwhile."""
    served = 0
    while await reader.readuntil(b"\r\n\r\n"):
        if served:
            writer.close()
            return
        body = json.dumps({"data": [{"id": "m"}]}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
        )
        served += 1


def test_a_stale_keep_alive_connection_is_resent_fresh_without_ejecting_the_backend():
    with (
        StreamBackend(closes_reused_connections) as backend,
        GatewayServer([f"127.0.0.1:{backend.port}"], backends={"health_interval_s": 3600}) as gw,
    ):
        with httpx.Client(timeout=10) as client:
            for _ in range(3):
                r = client.post(f"{gw.url}/v1/completions", json={"model": "m", "prompt": "x"})
                assert r.status_code == 200
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_ready_backends") == 1  # not ejected
        assert metric_value(text, "headroom_gateway_retries_total") == 0


def test_configured_models_are_the_only_ones_accepted(backends):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"], models={a.model: {"max_queue": 4}}) as gw:
        assert [m["id"] for m in httpx.get(f"{gw.url}/v1/models").json()["data"]] == [a.model]
        assert httpx.post(f"{gw.url}/v1/completions", json={"model": "other", "prompt": "x"}).status_code == 404
        ok = httpx.post(f"{gw.url}/v1/completions", json={"model": a.model, "prompt": "x", "max_tokens": 2}, timeout=30)
        assert ok.status_code == 200


def test_model_names_stay_bounded_before_backends_report_them():
    with (
        ScriptedBackend() as backend,
        GatewayServer(
            [f"127.0.0.1:{backend.port}"], backends={"health_path": "/health", "health_interval_s": 3600}
        ) as gw,
    ):
        # a health path that lists no models: the gateway never learns them and accepts names, up to a bound
        codes = [
            httpx.post(f"{gw.url}/v1/completions", json={"model": f"m{i}", "prompt": "x"}, timeout=10).status_code
            for i in range(40)
        ]
        assert codes[:32] == [200] * 32 and codes[32:] == [404] * 8
        assert (
            httpx.post(f"{gw.url}/v1/completions", json={"model": "m0", "prompt": "x"}, timeout=10).status_code == 200
        )


def test_giving_up_after_the_last_attempt_holds_no_backend_slot():
    dead = [dead_address() for _ in range(4)]
    with GatewayServer(dead, max_attempts=3, backends={"health_interval_s": 3600}) as gw:
        r = httpx.post(f"{gw.url}/v1/completions", json={"model": "m", "prompt": "x"}, timeout=30)
        assert r.status_code == 503
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_retries_total") == 2
        assert metric_value(text, "headroom_gateway_backend_in_flight_requests") == 0


def test_a_client_leaving_mid_stream_stops_the_backends_work(backends):
    a, _ = backends
    with GatewayServer([f"127.0.0.1:{a.port}"]) as gw:
        body = {"model": a.model, "prompt": "x", "max_tokens": 3000, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", f"{gw.url}/v1/completions", json=body, timeout=30) as r:
            for i, _ in enumerate(r.iter_lines()):
                if i == 5:
                    break  # leaving the block closes the connection
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            running = metric_value(httpx.get(f"{a.url}/metrics").text, "vllm:num_requests_running")
            answered = metric_value(
                httpx.get(f"{gw.url}/metrics").text, "headroom_gateway_requests_total", status="499"
            )
            if running == 0 and answered == 1:
                break
            time.sleep(0.1)
        assert running == 0 and answered == 1  # the backend aborted the stream, long before its 3,000 tokens


def test_each_answer_is_counted_against_its_models_slo_at_any_threshold():
    # 0.3 s and 0.03 s are no vLLM bucket edges: counted per request, the SLI holds at them all the same
    slo = {"ttft_s": 0.3, "tpot_s": 0.03, "e2e_s": 0.5}
    with (
        ScriptedBackend(paced) as backend,
        GatewayServer([f"127.0.0.1:{backend.port}"], default_limits={"slo": slo}) as gw,
    ):

        def ask(first_s, gap_s, stream=True):
            body = {
                "model": "scripted",
                "prompt": "x",
                "max_tokens": 5,
                "first_s": first_s,
                "gap_s": gap_s,
                "stream": stream,
            }
            assert httpx.post(f"{gw.url}/v1/completions", json=body, timeout=30).status_code == 200

        ask(0.0, 0.01)  # all met (TPOT 0.01 s, end to end 0.04 s)
        ask(0.45, 0.02)  # TTFT and end to end (0.53 s) missed
        ask(0.0, 0.06)  # TPOT missed (0.06 s), end to end 0.24 s met
        ask(0.0, 0.2, stream=False)  # whole answer: end to end only (0.8 s, missed)
        text = httpx.get(f"{gw.url}/metrics").text
    count = lambda slo_name, result: metric_value(
        text, "headroom_gateway_slo_requests_total", model="scripted", tenant="anonymous", slo=slo_name, result=result
    )
    assert (count("ttft", "met"), count("ttft", "missed")) == (2, 1)
    assert (count("tpot", "met"), count("tpot", "missed")) == (2, 1)
    assert (count("e2e", "met"), count("e2e", "missed")) == (2, 2)


def test_the_first_request_after_start_counts_under_its_models_label():
    """The gateway learns the backends' models before it listens: a request the moment it is up is its model's
    demand, not `unknown` traffic no autoscaler reads, however slow the backend's model list is to come."""
    with ScriptedBackend(models_delay_s=0.5) as backend, GatewayServer([f"127.0.0.1:{backend.port}"]) as gw:
        with httpx.stream("POST", f"{gw.url}/v1/completions", json={"model": "scripted", "stream": True}) as r:
            assert r.status_code == 200 and r.read()
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_requests_total", model="scripted", status="200") == 1
        assert 'model="unknown"' not in text
