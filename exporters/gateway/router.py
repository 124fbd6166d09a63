"""Minimal OpenAI-compatible router: least outstanding requests over ready replicas, streaming unbuffered."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from serving.http.server import Request, Responder, error_json

log = logging.getLogger("headroom.gateway")
GENERATION_ROUTES = ("/v1/completions", "/v1/chat/completions")
_USAGE = re.compile(rb'"usage": ?\{"prompt_tokens": ?(\d+), ?"total_tokens": ?\d+, ?"completion_tokens": ?(\d+)')
_RETRYABLE_STATUS = (502, 503, 504)
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}


class RouterMetrics:
    """Per-model request and token counters and per-backend in-flight gauges (no HTTP in here)."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter("headroom_gateway_requests", "Requests through the gateway by model and status code.",
                                ["model", "status"], registry=registry)
        self.prompt_tokens = Counter("headroom_gateway_prompt_tokens", "Prompt tokens of completed requests.", ["model"], registry=registry)
        self.output_tokens = Counter("headroom_gateway_output_tokens", "Output tokens of completed requests.", ["model"], registry=registry)
        self.in_flight = Gauge("headroom_gateway_backend_in_flight_requests", "Requests outstanding per backend.", ["backend"], registry=registry)
        self.retries = Counter("headroom_gateway_retries", "Requests retried on another backend before any byte reached the client.",
                               ["model"], registry=registry)
        self.ready_backends = Gauge("headroom_gateway_ready_backends", "Backends the gateway routes to.", registry=registry)


class Router:
    def __init__(self, registry: CollectorRegistry | None = None, max_attempts: int = 3, timeout_s: float = 600.0):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.metrics = RouterMetrics(self.registry)
        self.max_attempts = max_attempts
        self.outstanding: dict[str, int] = {}
        self._rr = itertools.count()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=5)
        self._session: aiohttp.ClientSession | None = None
        self._routable: list[str] = []

    # ---- backends ----------------------------------------------------------------------
    def set_backends(self, addresses: list[str]) -> None:
        """Replace the routable set; requests in flight to a removed backend finish undisturbed."""
        current = set(addresses)
        for address in current - self.outstanding.keys():
            self.outstanding[address] = 0
        for address in list(self.outstanding):
            if address not in current and self.outstanding[address] == 0:
                del self.outstanding[address]
                self.metrics.in_flight.remove(address)
        self._routable = list(addresses)
        self.metrics.ready_backends.set(len(self._routable))

    def pick(self, exclude: set[str]) -> str | None:
        """Least outstanding requests; ties broken round-robin."""
        candidates = [a for a in self._routable if a not in exclude]
        if not candidates:
            return None
        low = min(self.outstanding.get(a, 0) for a in candidates)
        best = [a for a in candidates if self.outstanding.get(a, 0) == low]
        return best[next(self._rr) % len(best)]

    def _acquire(self, address: str) -> None:
        self.outstanding[address] = self.outstanding.get(address, 0) + 1
        self.metrics.in_flight.labels(address).set(self.outstanding[address])

    def _release(self, address: str) -> None:
        self.outstanding[address] -= 1
        self.metrics.in_flight.labels(address).set(self.outstanding[address])
        if self.outstanding[address] == 0 and address not in self._routable:
            del self.outstanding[address]
            self.metrics.in_flight.remove(address)

    # ---- HTTP --------------------------------------------------------------------------
    async def handle(self, request: Request, resp: Responder) -> None:
        if request.path in GENERATION_ROUTES and request.method == "POST":
            return await self._proxy(request, resp)
        if request.path == "/metrics":
            return resp.send(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if request.path == "/health":
            return resp.send(200, b"")
        if request.path == "/ready":
            return resp.send(200, b"") if self._routable else error_json(resp, 503, "no ready backend")
        if request.path == "/v1/models" and request.method == "GET":
            return await self._proxy(request, resp)
        return error_json(resp, 404, f"no route {request.method} {request.path}")

    def _session_for(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=False)
        return self._session

    async def _proxy(self, request: Request, resp: Responder) -> None:
        model, prompt_words = _peek(request)
        tried: set[str] = set()
        last_error = "no ready backend"
        for attempt in range(self.max_attempts):
            address = self.pick(tried)
            if address is None:
                break
            tried.add(address)
            if attempt:
                self.metrics.retries.labels(model or "unknown").inc()
            self._acquire(address)
            try:
                outcome = await self._forward(address, request, resp, model, prompt_words)
            finally:
                self._release(address)
            if outcome is None:
                return
            last_error = outcome
        self.metrics.requests.labels("unknown", "503").inc()
        error_json(resp, 503, f"no backend could serve the request: {last_error}", headers=[("retry-after", "1")])

    async def _forward(self, address: str, request: Request, resp: Responder, model: str | None, prompt_words: int) -> str | None:
        """Send to one backend. Returns None when the client got an answer, or why to try another backend."""
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_HEADERS and k != "host"}
        url = f"http://{address}{request.path}"
        try:
            async with self._session_for().request(request.method, url, data=request.body or None, headers=headers) as up:
                if up.status in _RETRYABLE_STATUS:
                    await up.read()
                    return f"{address} answered {up.status}"
                label = model if (model and up.status < 400) else "unknown"
                ctype = up.headers.get("content-type", "application/json")
                extra = [(k, v) for k, v in up.headers.items() if k.lower() not in _HOP_HEADERS and k.lower() != "content-type"]
                if ctype.startswith("text/event-stream"):
                    await self._stream(up, resp, ctype, extra, label, prompt_words)
                else:
                    body = await up.read()
                    resp.send(up.status, body, ctype, extra)
                    if up.status == 200 and request.path in GENERATION_ROUTES:
                        self._account(label, body, prompt_words, streamed=False)
                self.metrics.requests.labels(label, str(up.status)).inc()
                return None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            if resp.status:  # bytes already reached the client: no retry, cut the stream
                log.warning("backend %s failed mid-response: %s", address, err)
                self.metrics.requests.labels(model or "unknown", "502").inc()
                resp.abort()
                return None
            return f"{address} unreachable ({type(err).__name__})"

    async def _stream(self, up, resp: Responder, ctype: str, extra, label: str, prompt_words: int) -> None:
        resp.start_stream(up.status, ctype, extra)
        tail = b""
        events = 0
        async for chunk in up.content.iter_any():
            resp.write(chunk)
            events += _count_new(tail, chunk, _TOKEN_EVENT) - _count_new(tail, chunk, _ROLE_EVENT)
            tail = (tail + chunk)[-4096:]
            if resp.closed:
                break
            await resp.drain()
        resp.end()
        self._account(label, tail, prompt_words, streamed=True, events=events)

    def _account(self, label: str, body: bytes, prompt_words: int, streamed: bool, events: int = 0) -> None:
        """Tokens from the backend's `usage` when present; otherwise counted (prompt words, content events)."""
        found = _USAGE.findall(body)
        if found:
            prompt, output = (int(x) for x in found[-1])
        else:
            prompt, output = prompt_words, events if streamed else 0
        self.metrics.prompt_tokens.labels(label).inc(prompt)
        self.metrics.output_tokens.labels(label).inc(output)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


_TOKEN_EVENT = b'"finish_reason"'  # one per token event (and per chat role event)
_ROLE_EVENT = b'"role": "assistant"'


def _count_new(before: bytes, chunk: bytes, pattern: bytes) -> int:
    """Occurrences of `pattern` that end inside `chunk`, including those that started in `before`."""
    carry = before[-(len(pattern) - 1):]
    return (carry + chunk).count(pattern) - carry.count(pattern)


def _peek(request: Request) -> tuple[str | None, int]:
    """The requested model and the prompt's word count, when the body is readable JSON."""
    if not request.body:
        return None, 0
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None, 0
    if not isinstance(body, dict):
        return None, 0
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        words = len(prompt.split())
    elif isinstance(body.get("messages"), list):
        words = sum(len(m["content"].split()) for m in body["messages"] if isinstance(m, dict) and isinstance(m.get("content"), str))
    else:
        words = 0
    model = body.get("model")
    return (model if isinstance(model, str) else None), words
