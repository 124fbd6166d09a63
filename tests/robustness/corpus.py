"""Malformed and hostile requests, as data: JSON bodies a careless client sends to the generation routes, and byte
sequences that test the HTTP layer itself. Each is run against the gateway and the emulator."""

from __future__ import annotations

import json

from tests import rawhttp

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
_OK = {"model": MODEL, "prompt": "a b c", "max_tokens": 2}


def _with(**fields) -> bytes:
    return json.dumps({**_OK, **fields}).encode()


def _chat(**fields) -> bytes:
    base = {"model": MODEL, "messages": [{"role": "user", "content": "a b"}], "max_tokens": 2}
    return json.dumps({**base, **fields}).encode()


# (name, route, body): every one must get an answer below 500, or a clean close
BODIES: list[tuple[str, str, bytes]] = [
    ("empty", "/v1/completions", b""),
    ("json null", "/v1/completions", b"null"),
    ("json array", "/v1/completions", b"[]"),
    ("json string", "/v1/completions", b'"prompt"'),
    ("json number", "/v1/completions", b"123"),
    ("truncated object", "/v1/completions", b'{"model": "'),
    ("invalid utf-8", "/v1/completions", b'{"model": "\xff\xfe", "prompt": "x"}'),
    ("utf-16 with bom", "/v1/completions", json.dumps(_OK).encode("utf-16")),
    ("model missing", "/v1/completions", json.dumps({"prompt": "x"}).encode()),
    ("model null", "/v1/completions", _with(model=None)),
    ("model number", "/v1/completions", _with(model=7)),
    ("model empty", "/v1/completions", _with(model="")),
    ("model of 1 MiB", "/v1/completions", _with(model="m" * (1 << 20))),
    ("model unknown", "/v1/completions", _with(model="not-served")),
    ("model with control characters", "/v1/completions", _with(model="a\r\nb\x00c")),
    ("prompt missing", "/v1/completions", json.dumps({"model": MODEL}).encode()),
    ("prompt null", "/v1/completions", _with(prompt=None)),
    ("prompt number", "/v1/completions", _with(prompt=3.5)),
    ("prompt token ids", "/v1/completions", _with(prompt=[1, 2, 3])),
    ("prompt of mixed types", "/v1/completions", _with(prompt=[1, "a", None])),
    ("prompt empty", "/v1/completions", _with(prompt="")),
    ("prompt over the context", "/v1/completions", _with(prompt="w " * 200_000)),
    ("max_tokens negative", "/v1/completions", _with(max_tokens=-1)),
    ("max_tokens zero", "/v1/completions", _with(max_tokens=0)),
    ("max_tokens huge", "/v1/completions", _with(max_tokens=10**12)),
    ("max_tokens fractional", "/v1/completions", _with(max_tokens=1.5)),
    ("max_tokens string", "/v1/completions", _with(max_tokens="2")),
    ("max_tokens NaN", "/v1/completions", b'{"model": "%s", "prompt": "x", "max_tokens": NaN}' % MODEL.encode()),
    (
        "max_tokens Infinity",
        "/v1/completions",
        b'{"model": "%s", "prompt": "x", "max_tokens": Infinity}' % MODEL.encode(),
    ),
    ("max_tokens 1e400", "/v1/completions", b'{"model": "%s", "prompt": "x", "max_tokens": 1e400}' % MODEL.encode()),
    ("temperature negative", "/v1/completions", _with(temperature=-1)),
    ("stream not a boolean", "/v1/completions", _with(stream="yes")),
    ("stream_options not an object", "/v1/completions", _with(stream=True, stream_options=[1])),
    ("ignore_eos not a boolean", "/v1/completions", _with(ignore_eos="no")),
    ("n of 1000", "/v1/completions", _with(n=1000)),
    ("unknown fields", "/v1/completions", _with(frobnicate={"a": [1, 2]}, logit_bias={"1": 100})),
    (
        "duplicate keys",
        "/v1/completions",
        b'{"model": "x", "model": "%s", "prompt": "a", "max_tokens": 2}' % MODEL.encode(),
    ),
    ("lone surrogate", "/v1/completions", b'{"model": "%s", "prompt": "\\ud800", "max_tokens": 2}' % MODEL.encode()),
    ("100,000 deep", "/v1/completions", b"[" * 100_000 + b"]" * 100_000),
    (
        "100,000 deep inside an object",
        "/v1/completions",
        b'{"model": "%s", "prompt": ' % MODEL.encode() + b"[" * 100_000,
    ),
    ("5 MB of whitespace", "/v1/completions", b" " * (5 << 20) + json.dumps(_OK).encode()),
    ("body over the limit", "/v1/completions", b"x" * (9 << 20)),
    ("messages missing", "/v1/chat/completions", json.dumps({"model": MODEL}).encode()),
    ("messages not a list", "/v1/chat/completions", _chat(messages="hello")),
    ("messages empty", "/v1/chat/completions", _chat(messages=[])),
    ("messages of numbers", "/v1/chat/completions", _chat(messages=[1, 2])),
    ("message without role", "/v1/chat/completions", _chat(messages=[{"content": "a"}])),
    ("message content null", "/v1/chat/completions", _chat(messages=[{"role": "user", "content": None}])),
    (
        "message content parts",
        "/v1/chat/completions",
        _chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a b"}, {"type": "image_url"}]}]),
    ),
    ("message content number", "/v1/chat/completions", _chat(messages=[{"role": "user", "content": 5}])),
]

_COMPLETION = rawhttp.post("/v1/completions", json.dumps(_OK).encode())

# (name, byte parts sent with a pause between them): the HTTP layer's own hostile cases; KEPT_OPEN: those a server may
# rightly answer and keep open, with the number of answers to read before hanging up
PROTOCOL: list[tuple[str, tuple[bytes, ...]]] = [
    ("garbage after a request, one packet", (_COMPLETION + b"\x00\x01 garbage\r\n\r\n",)),
    ("garbage after a request, next packet", (_COMPLETION, b"\x00\x01 garbage\r\n\r\n")),
    (
        "pipelined, the last one closing",
        (
            _COMPLETION
            + rawhttp.get("/health")
            + rawhttp.post("/v1/completions", json.dumps(_OK).encode(), {"connection": "close"}),
        ),
    ),
    ("expect 100-continue", (rawhttp.post("/v1/completions", json.dumps(_OK).encode(), {"expect": "100-continue"}),)),
    ("expect something else", (rawhttp.post("/v1/completions", json.dumps(_OK).encode(), {"expect": "bananas"}),)),
    (
        "content-length and chunked together",
        (
            (
                b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n"
                b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ),
    ),
    (
        "two content-lengths",
        (b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 40\r\n\r\n{}",),
    ),
    ("negative content-length", (b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n",)),
    (
        "bad chunk size",
        (b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",),
    ),
    (
        "chunked body cut short",
        (b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc",),
    ),
    ("http/0.9 request line", (b"GET /\r\n\r\n",)),
    ("http/2 preface", (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",)),
    ("tls client hello", (bytes.fromhex("16030100a5010000a10303") + b"\x00" * 160,)),
    ("websocket upgrade", (rawhttp.get("/v1/models", headers={"connection": "upgrade", "upgrade": "websocket"}),)),
    ("absolute-form target", (b"GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nhost: x\r\n\r\n",)),
    ("connect method", (b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nhost: x\r\n\r\n",)),
    ("lowercase method", (b"get /health HTTP/1.1\r\nhost: x\r\n\r\n",)),
    ("long method", (b"A" * 10_000 + b" /health HTTP/1.1\r\nhost: x\r\n\r\n",)),
    ("nul in a header value", (b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: b\x00c\r\n\r\n",)),
    ("header without a colon", (b"GET /health HTTP/1.1\r\nhost: x\r\nnocolon\r\n\r\n",)),
    ("obsolete line folding", (b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: b\r\n  folded\r\n\r\n",)),
    ("space before the colon", (b"GET /health HTTP/1.1\r\nhost: x\r\nx-a : b\r\n\r\n",)),
    ("url of 1 MiB", (rawhttp.get("/health?" + "a" * (1 << 20)),)),
    ("header of 1 MiB", (rawhttp.get("/health", headers={"x-big": "b" * (1 << 20)}),)),
    ("500 headers", (rawhttp.get("/health", headers={f"x-h{i}": "1" for i in range(500)}),)),
    (
        "bearer token of 4 MiB",
        (rawhttp.post("/v1/completions", json.dumps(_OK).encode(), {"authorization": "Bearer " + "k" * (4 << 20)}),),
    ),
    ("100 pipelined requests", (rawhttp.get("/health") * 100,)),
    ("head requests", (rawhttp.get("/v1/models", "HEAD") + rawhttp.get("/health", "HEAD"),)),
    ("unknown method", (b"BREW /health HTTP/1.1\r\nhost: x\r\n\r\n",)),
    ("bare line feeds", (b"GET /health HTTP/1.1\nhost: x\n\n",)),
    ("only a request line, then a close", (b"POST /v1/completions HTTP/1.1\r\n",)),
]

KEPT_OPEN = {
    "expect 100-continue": 1,
    "websocket upgrade": 1,
    "absolute-form target": 1,
    "connect method": 1,
    "100 pipelined requests": 100,
    "head requests": 2,
}
