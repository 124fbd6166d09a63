"""The emulator through a real HTTP client: streaming, usage, chat, cold start, every bad-input case."""

import json
import socket
import time

import httpx
import pytest

from tests.helpers import EmulatorServer, sse_events


@pytest.fixture(scope="module")
def server():
    with EmulatorServer(eos_mean_tokens=5) as s:
        yield s


def completion(server, **fields):
    body = {"model": server.model, "prompt": "one two three four", "max_tokens": 8, **fields}
    return httpx.post(f"{server.url}/v1/completions", json=body, timeout=30)


def test_streamed_completion_counts_and_usage(server):
    r = completion(
        server, prompt="a " * 37, max_tokens=12, stream=True, ignore_eos=True, stream_options={"include_usage": True}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    docs = [json.loads(e) for e in events[:-1]]
    tokens = [d for d in docs if d["choices"]]
    assert len(tokens) == 12
    assert all(len(d["choices"][0]["text"].split()) == 1 for d in tokens)
    assert [d["choices"][0]["finish_reason"] for d in tokens] == [None] * 11 + ["length"]
    assert docs[-1]["usage"] == {"prompt_tokens": 37, "completion_tokens": 12, "total_tokens": 49}
    assert docs[-1]["choices"] == []


def test_stream_without_usage_has_no_usage_chunk(server):
    r = completion(server, stream=True, ignore_eos=True)
    docs = [json.loads(e) for e in sse_events(r.text)[:-1]]
    assert len(docs) == 8 and all("usage" not in d for d in docs)


def test_non_streamed_completion(server):
    r = completion(server, max_tokens=20, ignore_eos=True)
    doc = r.json()
    assert doc["object"] == "text_completion"
    assert len(doc["choices"][0]["text"].split()) == 20
    assert doc["usage"] == {"prompt_tokens": 4, "completion_tokens": 20, "total_tokens": 24}
    assert doc["choices"][0]["finish_reason"] == "length"


def test_eos_ends_with_stop_unless_ignored(server):
    reasons = {completion(server, max_tokens=500).json()["choices"][0]["finish_reason"] for _ in range(5)}
    assert reasons == {"stop"}  # natural lengths average 5 tokens here


def test_token_id_prompt_counts_ids(server):
    assert completion(server, prompt=[1, 2, 3, 4, 5, 6], ignore_eos=True).json()["usage"]["prompt_tokens"] == 6


def test_chat_stream_role_then_content_then_usage(server):
    body = {
        "model": server.model,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there friend"}]},
        ],
        "max_completion_tokens": 5,
        "stream": True,
        "ignore_eos": True,
        "stream_options": {"include_usage": True},
    }
    r = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
    docs = [json.loads(e) for e in sse_events(r.text)[:-1]]
    assert docs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [d["choices"][0]["delta"]["content"] for d in docs[1:] if d["choices"]]
    assert len(content) == 5
    assert docs[-1]["usage"]["prompt_tokens"] == 5 and docs[-1]["usage"]["completion_tokens"] == 5
    assert all(d["object"] == "chat.completion.chunk" for d in docs)


def test_chat_non_streamed(server):
    body = {
        "model": server.model,
        "messages": [{"role": "user", "content": "hi you"}],
        "max_tokens": 3,
        "ignore_eos": True,
    }
    doc = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30).json()
    assert doc["object"] == "chat.completion"
    assert len(doc["choices"][0]["message"]["content"].split()) == 3


def test_models_health(server):
    models = httpx.get(f"{server.url}/v1/models").json()
    assert models["data"][0]["id"] == server.model
    assert models["data"][0]["max_model_len"] == 131072
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/ready").status_code == 200


def assert_error(r, status, *words):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["type"] and err["message"]
    for word in words:
        assert word in err["message"]
    return err


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, ["malformed JSON"]),
        (b"[1, 2]", 400, ["JSON object"]),
        (b'{"prompt": "hi"}', 400, ["'model'"]),
        (b'{"model": "MODEL"}', 400, ["'prompt'"]),
        (b'{"model": "MODEL", "prompt": "hi", "max_tokens": "ten"}', 400, ["max_tokens"]),
        (b'{"model": "MODEL", "prompt": "hi", "max_tokens": 0}', 400, ["max_tokens"]),
        (b'{"model": "MODEL", "prompt": "hi", "max_tokens": 131072}', 400, ["maximum context length is 131072"]),
        (b'{"model": "MODEL", "prompt": "hi", "stream": "yes"}', 400, ["stream"]),
        (b'{"model": "MODEL", "prompt": "hi", "stream_options": {"include_usage": true}}', 400, ["stream=True"]),
        (b'{"model": "MODEL", "prompt": "hi", "n": 2}', 400, ["n=1"]),
        (b'{"model": "MODEL", "prompt": ""}', 400, ["at least one token"]),
        (b'{"model": "other-model", "prompt": "hi"}', 404, ["other-model", "does not exist"]),
    ],
)
def test_bad_completion_input(server, body, status, words):
    r = httpx.post(f"{server.url}/v1/completions", content=body.replace(b"MODEL", server.model.encode()), timeout=10)
    assert_error(r, status, *words)


@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"model": "MODEL"}', ["'messages'"]),
        (b'{"model": "MODEL", "messages": []}', ["'messages'"]),
        (b'{"model": "MODEL", "messages": [{"content": "x"}]}', ["role"]),
        (b'{"model": "MODEL", "messages": [{"role": "user", "content": 5}]}', ["content"]),
        (b'{"model": "MODEL", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}', ["text"]),
    ],
)
def test_bad_chat_input(server, body, words):
    r = httpx.post(
        f"{server.url}/v1/chat/completions", content=body.replace(b"MODEL", server.model.encode()), timeout=10
    )
    assert_error(r, 400, *words)


def test_wrong_method_and_route(server):
    assert_error(httpx.get(f"{server.url}/v1/completions"), 405, "GET")
    assert_error(httpx.get(f"{server.url}/v2/nothing"), 404, "/v2/nothing")


def test_oversized_body_is_refused(server):
    r = httpx.post(f"{server.url}/v1/completions", content=b"x" * (9 << 20), timeout=30)
    assert_error(r, 413, "exceeds")


def test_malformed_http_gets_400_and_close(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"NOT A REQUEST\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 400")


def test_server_survives_everything_above(server):
    assert completion(server, ignore_eos=True).status_code == 200


def test_cold_start_gates_ready_and_requests():
    with EmulatorServer(cold_start_s=1.0) as s:
        assert httpx.get(f"{s.url}/ready").status_code == 503
        assert_error(completion(s), 503, "cold start")
        assert httpx.get(f"{s.url}/health").status_code == 200
        time.sleep(1.1)
        assert httpx.get(f"{s.url}/ready").status_code == 200
        assert completion(s).status_code == 200


class Captured:
    """A responder stand-in that keeps what was sent."""

    status, body = 0, b""

    def send(self, status, body, content_type="application/json", headers=None):
        self.status, self.body = status, body


def test_admin_routes_answer_only_clients_on_this_host(server):
    from serving.common.http.server import Request

    for peer, status in (("10.1.2.3", 403), ("192.168.0.9", 403), ("127.0.0.1", 200), ("::1", 200)):
        resp = Captured()
        request = Request("GET", "/admin/state", "", {}, peer=peer)
        server.thread.call(server.replica._route(request, resp, "/admin/state"))
        assert resp.status == status, (peer, resp.body)


def test_pipelined_requests_and_a_late_parse_error_leave_the_engine_alive(server):
    from tests import rawhttp

    body = json.dumps({"model": server.model, "prompt": "a b", "max_tokens": 30, "ignore_eos": True}).encode()
    # a generation in flight, then bytes the parser refuses: the 400 waits its turn; the engine goes on
    ex = rawhttp.exchange(server.port, rawhttp.post("/v1/completions", body), b"\x00 nonsense\r\n\r\n", pause_s=0.05)
    assert [a.status for a in ex.answers] == [200, 400] and ex.closed
    pipeline = (
        rawhttp.post("/v1/completions", body)
        + rawhttp.get("/health")
        + rawhttp.post("/v1/completions", body, {"connection": "close"})
    )
    ex = rawhttp.exchange(server.port, pipeline)
    assert [a.status for a in ex.answers] == [200, 200, 200] and ex.closed
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert completion(server, ignore_eos=True).status_code == 200
