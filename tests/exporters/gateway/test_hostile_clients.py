"""The gateway against careless and hostile clients, and odd backends: each case here once broke the hand-written
HTTP layer (response mix-ups under Expect, stuck slots, no limits or timeouts, pipelining, unbounded series)."""

import asyncio
import json
import random
import socket
import threading
import time

import httpx
import pytest

from tests import rawhttp
from tests.helpers import EmulatorServer, GatewayServer, StreamBackend, metric_value


async def interim_first(reader, writer):
    """A backend that answers every request with an interim `100 Continue` first, as uvicorn (vLLM's server) does
    for a request with `Expect: 100-continue`, then echoes the prompt after a random pause."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await reader.readexactly(length)
            if head.startswith(b"GET"):
                answer = json.dumps({"data": [{"id": "echo"}]}).encode()
            else:
                await asyncio.sleep(random.uniform(0, 0.02))
                answer = json.dumps({"echo": json.loads(body)["prompt"]}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
                % (len(answer), answer)
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def settled(gw, timeout_s: float = 10.0) -> tuple[float, float]:
    """(requests in flight, requests queued) once both are zero, or as they stand when the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = httpx.get(f"{gw.url}/metrics").text
        state = (
            metric_value(text, "headroom_gateway_backend_in_flight_requests"),
            metric_value(text, "headroom_gateway_queue_depth"),
        )
        if state == (0, 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def test_each_client_gets_its_own_answer_when_backends_send_interim_responses():
    with (
        StreamBackend(interim_first) as backend,
        GatewayServer([f"127.0.0.1:{backend.port}"], max_in_flight_per_backend=4) as gw,
    ):
        got = {}

        def client(i):
            body = json.dumps({"model": "echo", "prompt": f"client-{i}"}).encode()
            ex = rawhttp.exchange(
                gw.port,
                rawhttp.post("/v1/completions", body, {"expect": "100-continue"}),
                until_answers=1,
                read_timeout_s=10,
            )
            got[i] = ex.answers

        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(40))  # nobody hung
        for i, answers in got.items():
            assert answers[0].status == 200 and json.loads(answers[0].body) == {"echo": f"client-{i}"}
        assert settled(gw) == (0, 0)


def test_expect_100_continue_is_answered_by_the_gateway_before_the_body_is_sent(backends_one):
    with GatewayServer([f"127.0.0.1:{backends_one.port}"]) as gw:
        body = json.dumps({"model": backends_one.model, "prompt": "a b c", "max_tokens": 2}).encode()
        head, _, payload = rawhttp.post("/v1/completions", body, {"expect": "100-continue"}).partition(b"\r\n\r\n")
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
            sock.sendall(head + b"\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # only then the body goes out
            sock.sendall(payload)
            raw = b""
            while not rawhttp.parse(raw):
                raw += sock.recv(1 << 16)
        assert rawhttp.parse(raw)[0].status == 200
        refused = rawhttp.exchange(gw.port, rawhttp.post("/v1/completions", body, {"expect": "something-else"}))
        assert refused.answers[0].status == 417 and refused.closed


@pytest.fixture(scope="module")
def backends_one():
    with EmulatorServer() as a:
        yield a


def test_garbage_after_a_valid_request_frees_its_backend_slot(backends_one):
    a = backends_one
    config = {"max_in_flight_per_backend": 4, "default_limits": {"max_queue": 4, "queue_timeout_s": 5}}
    with GatewayServer([f"127.0.0.1:{a.port}"], **config) as gw:
        body = json.dumps({"model": a.model, "prompt": "x", "max_tokens": 20, "ignore_eos": True}).encode()
        results = []

        def poisoned(pause_s):  # the garbage in the request's own packet, or in the next one once it is being served
            parts = (rawhttp.post("/v1/completions", body), b"\x00\x01 garbage\r\n\r\n")
            results.append(
                (
                    pause_s,
                    rawhttp.exchange(gw.port, *parts, pause_s=pause_s)
                    if pause_s
                    else rawhttp.exchange(gw.port, b"".join(parts)),
                )
            )

        threads = [threading.Thread(target=poisoned, args=(0.05 * (i % 2),)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for pause_s, ex in results:
            # one packet: the parser refuses it whole, so nothing was forwarded; two: the request is answered first
            assert [a.status for a in ex.answers] == ([200, 400] if pause_s else [400]) and ex.closed
        assert settled(gw) == (0, 0)
        ok = httpx.post(f"{gw.url}/v1/completions", content=body, timeout=10)
        assert ok.status_code == 200


def test_clients_that_leave_free_their_slot_and_their_place_in_the_queue(backends_one):
    a = backends_one
    config = {"max_in_flight_per_backend": 1, "default_limits": {"max_queue": 2, "queue_timeout_s": 60}}
    with GatewayServer([f"127.0.0.1:{a.port}"], **config) as gw:
        long = json.dumps(
            {"model": a.model, "prompt": "x", "max_tokens": 4000, "ignore_eos": True, "stream": True}
        ).encode()
        socks = []
        for _ in range(3):  # one holds the only slot, two wait in the queue
            sock = socket.create_connection(("127.0.0.1", gw.port))
            sock.sendall(rawhttp.post("/v1/completions", long))
            socks.append(sock)
            time.sleep(0.2)
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_queue_depth") == 2
        for sock in socks:
            sock.close()
        assert settled(gw) == (0, 0)
        text = httpx.get(f"{gw.url}/metrics").text
        statuses = {
            s: metric_value(text, "headroom_gateway_requests_total", status=s)
            for s in ("200", "429", "499", "502", "503")
        }
        assert statuses["499"] == 3, statuses
        assert (
            metric_value(text, "headroom_gateway_backend_failures_total") == 0
        )  # a client leaving is not the backend's
        short = json.dumps({"model": a.model, "prompt": "x", "max_tokens": 2}).encode()
        assert httpx.post(f"{gw.url}/v1/completions", content=short, timeout=10).status_code == 200


LIMITS = {
    "header_timeout_s": 0.5,
    "body_timeout_s": 0.5,
    "idle_timeout_s": 2.0,
    "max_url_bytes": 2048,
    "max_header_bytes": 1024,
    "max_headers": 20,
    "max_body_bytes": 4096,
}


@pytest.fixture(scope="module")
def strict_gateway(backends_one):
    with GatewayServer([f"127.0.0.1:{backends_one.port}"], limits=LIMITS) as gw:
        yield gw


def test_slowloris_headers_are_cut_at_the_header_timeout(strict_gateway):
    before = metric_value(
        httpx.get(f"{strict_gateway.url}/metrics").text,
        "headroom_gateway_connections_turned_away_total",
        reason="header_timeout",
    )
    drip = [b"POST /v1/completions HTTP/1.1\r\n"] + [b"x-drip-%d: 1\r\n" % i for i in range(12)]
    ex = rawhttp.exchange(strict_gateway.port, *drip, pause_s=0.2, read_timeout_s=5)
    assert ex.closed and ex.seconds < 2.5 and not ex.answers
    text = httpx.get(f"{strict_gateway.url}/metrics").text
    assert metric_value(text, "headroom_gateway_connections_turned_away_total", reason="header_timeout") == before + 1
    assert metric_value(text, "headroom_gateway_open_connections") >= 1  # this scrape's own


def test_a_body_shorter_than_its_content_length_gets_408(strict_gateway):
    start = rawhttp.post("/v1/completions", b"x" * 100)[:-90]  # 10 of the 100 bytes announced
    ex = rawhttp.exchange(strict_gateway.port, start, read_timeout_s=5)
    assert ex.answers[0].status == 408 and ex.closed and ex.seconds < 5  # the close lingers up to 2 s after the 408


def test_silent_and_idle_connections_are_closed(strict_gateway):
    silent = [socket.create_connection(("127.0.0.1", strict_gateway.port)) for _ in range(50)]
    waits = [rawhttp.wait_closed(sock, 5) for sock in silent]  # never a byte: the header deadline (0.5 s)
    assert all(w is not None for w in waits) and max(waits) < 1.5, waits
    with socket.create_connection(("127.0.0.1", strict_gateway.port)) as kept:
        kept.sendall(rawhttp.get("/health"))
        closed_after = rawhttp.wait_closed(kept, 6)  # after its answer, the keep-alive idle timeout (2 s)
        assert closed_after is not None and closed_after > 1.0
    for sock in silent:
        sock.close()


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (rawhttp.get("/health?" + "a" * 4000), 400),  # URL over max_url_bytes
        (rawhttp.get("/health", headers={"x-big": "b" * 2000}), 400),  # one header over max_header_bytes
        (rawhttp.get("/health", headers={f"x-{i}": "1" for i in range(40)}), 400),  # more than max_headers
        (rawhttp.post("/v1/completions", b"{" * 5000), 413),  # body over max_body_bytes, by its content-length
        (
            b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n1000\r\n"
            + b"a" * 4096
            + b"\r\n1000\r\n"
            + b"a" * 4096
            + b"\r\n0\r\n\r\n",
            413,
        ),  # chunked, over the limit as it arrives
    ],
)
def test_oversized_requests_are_refused_and_the_connection_closed(strict_gateway, request_bytes, status):
    ex = rawhttp.exchange(strict_gateway.port, request_bytes)
    assert ex.answers and ex.answers[0].status == status and ex.closed


def test_pipelined_requests_are_all_answered_in_order_before_a_close(backends_one):
    a = backends_one
    with GatewayServer([f"127.0.0.1:{a.port}"]) as gw:
        body = json.dumps({"model": a.model, "prompt": "x", "max_tokens": 3}).encode()
        pipeline = (
            rawhttp.post("/v1/completions", body)
            + rawhttp.get("/health")
            + rawhttp.post("/v1/completions", body, {"connection": "close"})
        )
        ex = rawhttp.exchange(gw.port, pipeline)
        assert [x.status for x in ex.answers] == [200, 200, 200] and ex.closed
        assert all(json.loads(x.body)["usage"]["completion_tokens"] == 3 for x in (ex.answers[0], ex.answers[2]))


def test_head_has_no_body_and_other_methods_are_refused(strict_gateway):
    ex = rawhttp.exchange(
        strict_gateway.port, rawhttp.get("/v1/models", "HEAD"), until_answers=1, head_only=frozenset({0})
    )
    assert ex.answers[0].status == 200 and ex.answers[0].body == b""
    assert b"{" not in ex.raw  # the bytes on the wire: no body after the head
    r = httpx.get(f"{strict_gateway.url}/v1/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert httpx.delete(f"{strict_gateway.url}/metrics").status_code == 405


def test_a_deeply_nested_body_is_a_400_not_a_500(backends_one):
    with GatewayServer([f"127.0.0.1:{backends_one.port}"]) as gw:
        r = httpx.post(f"{gw.url}/v1/completions", content=b"[" * 100_000 + b"]" * 100_000, timeout=10)
        assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]


def test_model_labels_come_only_from_known_models():
    from tests.exporters.gateway.test_gateway import ScriptedBackend

    with (
        ScriptedBackend() as backend,
        GatewayServer(
            [f"127.0.0.1:{backend.port}"], backends={"health_path": "/health", "health_interval_s": 3600}
        ) as gw,
    ):
        names = ["x" * 200, "a-model", "\u00e9t\u00e9"]
        for name in names:
            assert httpx.post(f"{gw.url}/v1/completions", json={"model": name, "prompt": "x"}).status_code == 200
        too_long = httpx.post(f"{gw.url}/v1/completions", json={"model": "y" * 300, "prompt": "x"})
        assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "model"
        text = httpx.get(f"{gw.url}/metrics").text
        assert not any(name in text for name in names)
        assert metric_value(text, "headroom_gateway_requests_total", model="unknown", status="200") == 3


def test_tenant_series_stay_within_the_cap_however_many_keys_send(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from exporters.gateway.metrics import GatewayMetrics
    from exporters.gateway.tenants import TenantLabels

    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    labels = TenantLabels(cap=20, every=100, on_dropped=metrics.forget_tenant)
    rng = random.Random(0)
    for i in range(5000):  # 500 keys, the busy ones changing over time
        tenant = f"t{rng.randrange(500) if i % 3 else (i // 1000) * 7}"
        series = metrics.series("m", labels.label(tenant))
        series.answered("200")
        series.output_tokens.inc(3)
        metrics.child(metrics.rejections, "m", labels.label(tenant), "queue_full").inc()
    text = generate_latest(registry).decode()
    tenants = {
        s.labels["tenant"] for f in text_string_to_metric_families(text) for s in f.samples if "tenant" in s.labels
    }
    assert len(tenants - {"other"}) <= 20 and "other" in tenants
    assert len(labels.labelled) <= 20


def test_connections_over_the_cap_are_closed_at_once(backends_one):
    with GatewayServer([f"127.0.0.1:{backends_one.port}"], limits={"max_connections": 8}) as gw:
        held = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(8)]
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", gw.port))
        assert rawhttp.wait_closed(extra, 2) is not None
        for sock in held[:2]:  # room again once some leave
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{gw.url}/health", timeout=5).status_code == 200
        text = httpx.get(f"{gw.url}/metrics").text
        assert metric_value(text, "headroom_gateway_connections_turned_away_total", reason="max_connections") == 1
        for sock in held[2:] + [extra]:
            sock.close()
