"""The gateway: OpenAI-compatible entry point in front of vLLM replicas, and Headroom's token and queue exporter.

Per request: tenant from the bearer token, body checked (JSON, model) before any backend is touched, a backend slot
from admission control (fair queue per model, 429 when full), forwarded with retries only before the first byte,
streamed through unbuffered, and accounted: tokens, queue wait, client-side TTFT, ITL and end-to-end latency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from exporters.gateway.admission import Admission, Rejected
from exporters.gateway.backends import Backend, BackendPool
from exporters.gateway.config import GatewayConfig
from exporters.gateway.metrics import GatewayMetrics, StateCollector
from exporters.gateway.tenants import KeyRing, TenantLabels
from exporters.gateway.upstream import UpstreamError, UpstreamPool
from serving.http.server import Request, Responder, error_body, error_json

log = logging.getLogger("headroom.gateway")
GENERATION_ROUTES = ("/v1/completions", "/v1/chat/completions")
_USAGE = re.compile(rb'"usage": ?\{"prompt_tokens": ?(\d+), ?"total_tokens": ?\d+, ?"completion_tokens": ?(\d+)')
_RETRYABLE_STATUS = (502, 503, 504)
_MAX_UNLISTED_MODELS = 32
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
_TOKEN_EVENT = b'"finish_reason"'  # one per token event (and per chat role event)
_ROLE_EVENT = b'"role": "assistant"'
_CHOICES = (b'"choices": [{', b'"choices":[{')  # events carrying choices (vLLM bench's TTFT and ITL); usage-only ones: []


class _Refused(Exception):
    """Why a backend could not take the request before any byte reached the client (try another)."""


class _Stale(Exception):
    """A reused keep-alive connection was closed by the backend before it answered: resend on a fresh one."""


class Gateway:
    def __init__(self, config: GatewayConfig, registry: CollectorRegistry | None = None, keys: KeyRing | None = None):
        self.config = config
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.metrics = GatewayMetrics(self.registry)
        self.keys = keys if keys is not None else KeyRing.from_file(config.keys_file)
        self.tenants = TenantLabels(config.tenant_label_cap)
        self.pool = BackendPool(config.max_in_flight_per_backend, on_change=self._backends_changed)
        self.admission = Admission(self.pool, self._limits)
        self.registry.register(StateCollector(self.pool, self.admission))
        self.upstream = UpstreamPool(config.connect_timeout_s)
        self._configured_models = frozenset(config.models)  # read on every request: built once
        self._unlisted_models: set[str] = set()  # names accepted while no model list was known

    # ---- backends ----------------------------------------------------------------------
    def set_backends(self, addresses: list[str]) -> None:
        """The discovered backends (a static list, file_sd, Kubernetes, or the local fleet's ready replicas)."""
        self.pool.set_discovered(list(addresses))

    def _backends_changed(self) -> None:
        self.admission.dispatch()

    def _limits(self, model: str):
        return self.config.models.get(model, self.config.default_limits)

    def known_models(self) -> frozenset[str] | set[str] | None:
        """The models requests may name: the configured ones, else those the backends report (None: any)."""
        return self._configured_models or self.pool.models()

    # ---- HTTP --------------------------------------------------------------------------
    async def handle(self, request: Request, resp: Responder) -> None:
        if request.path in GENERATION_ROUTES and request.method == "POST":
            return await self._generate(request, resp)
        if request.path == "/metrics":
            return resp.send(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if request.path == "/health":
            return resp.send(200, b"")
        if request.path == "/ready":
            return resp.send(200, b"") if self.pool.routable() else error_json(resp, 503, "no ready backend")
        if request.path == "/v1/models" and request.method == "GET":
            return self._models(resp)
        return error_json(resp, 404, f"no route {request.method} {request.path}")

    def _models(self, resp: Responder) -> None:
        names = sorted(self.known_models() or ())
        body = {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "headroom"} for n in names]}
        resp.send(200, json.dumps(body).encode())

    def _reject(self, resp: Responder, status: int, reason: str, message: str, model: str = "", tenant: str = "other",
                retry_after_s: int | None = None, param: str | None = None) -> None:
        self.metrics.rejections.labels(model, tenant, reason).inc()
        self.metrics.series(model, tenant).answered(str(status))
        headers = [("retry-after", str(retry_after_s))] if retry_after_s is not None else None
        resp.send(status, error_body(status, message, param), headers=headers)

    async def _generate(self, request: Request, resp: Responder) -> None:
        tenant = self.keys.tenant(request.headers.get("authorization"))
        if tenant is None:
            return self._reject(resp, 401, "unauthorized", "missing or unknown API key: send Authorization: Bearer <key>")
        parsed = _parse_body(request.body)
        if isinstance(parsed, str):
            return self._reject(resp, 400, "invalid", parsed, tenant=self.tenants.label(tenant),
                                param="model" if "model" in parsed else None)
        model, prompt_words, affinity_text = parsed
        label = self.tenants.label(tenant)
        allowed = self.known_models()
        if allowed is not None and model not in allowed:
            return self._reject(resp, 404, "unknown_model", f"The model `{model}` does not exist.", tenant=label, param="model")
        if allowed is None and model not in self._unlisted_models:  # before the backends said what they serve
            if len(self._unlisted_models) >= _MAX_UNLISTED_MODELS:  # metric labels and queues stay bounded
                return self._reject(resp, 404, "unknown_model", f"The model `{model}` is not known yet: the backends have "
                                    "not reported the models they serve", tenant=label, param="model")
            self._unlisted_models.add(model)
        affinity = affinity_text[: self.config.prefix_affinity_chars] if self.config.routing == "prefix_affinity" else None
        try:
            backend, waited = await self.admission.acquire(model, tenant, affinity)
        except Rejected as no:
            status = 503 if no.reason == "no_backend" else 429
            return self._reject(resp, status, no.reason, str(no), model, label, no.retry_after_s)
        self.metrics.model(model).queue_wait.observe(waited)
        await self._forward_with_retries(request, resp, backend, self.metrics.series(model, label), prompt_words,
                                         (tenant, affinity))

    async def _forward_with_retries(self, request: Request, resp: Responder, backend: Backend, series, prompt_words: int,
                                    requeue_as: tuple[str, str | None]) -> None:
        """Up to max_attempts backends, each before any byte reached the client. When no other backend is routable, the
        request waits in the queue again (`requeue_as`: its tenant and affinity) for one: a backend taken out for a
        refused connection comes back at its next passed health check, a new replica as it is discovered."""
        model = series.model
        tried = {backend.address}
        reason = ""
        for attempt in range(self.config.max_attempts):
            if attempt:
                self.metrics.retries.labels(model).inc()
            try:
                try:
                    await self._forward(backend, request, resp, series, prompt_words)
                except _Stale:  # the backend had closed that idle connection: the same backend, a new connection
                    await self._forward(backend, request, resp, series, prompt_words, fresh=True)
                return
            except _Refused as why:
                reason = str(why)
                self.metrics.backend_failures.labels(backend.address, "connect").inc()
            finally:
                self.admission.release(backend)
            if attempt + 1 == self.config.max_attempts:
                break
            backend = self.pool.pick(model, exclude=tried, within_capacity=False)  # it already waited its turn
            if backend is not None:
                self.pool.acquire(backend)
            else:  # none else now: no backend has seen the request, so it may wait for one like any other
                try:
                    backend, waited = await self.admission.acquire(model, *requeue_as)
                except Rejected as no:
                    reason = f"{reason}; then {no}"
                    break
                self.metrics.model(model).queue_wait.observe(waited)
            tried.add(backend.address)
        series.answered("503")
        error_json(resp, 503, f"no backend could serve the request: {reason}", headers=[("retry-after", "1")])

    async def _forward(self, backend: Backend, request: Request, resp: Responder, series, prompt_words: int,
                       fresh: bool = False) -> None:
        """Send to one backend and answer the client; raises _Refused when another backend should be tried."""
        if resp.closed:  # the client left while its request waited for a slot
            series.answered("499")
            return
        try:
            conn = await self.upstream.connection(backend.address, fresh)
        except UpstreamError as err:
            self.pool.eject(backend.address)
            raise _Refused(str(err)) from None
        relay = _Relay(self, resp, conn, backend, series, prompt_words, request.received_s)
        resp.on_close = relay.client_gone
        conn.send(_upstream_request(request, backend.address), relay, self.config.first_byte_timeout_s)
        # past the request timeout the backend's connection is closed: the relay hears of it as a lost connection
        timer = asyncio.get_running_loop().call_later(self.config.request_timeout_s, conn.close)
        try:
            status = await relay.done
        finally:
            timer.cancel()
            resp.on_close = None
        series.answered(status)

    def _fail_stream(self, resp: Responder, backend: Backend, err: Exception) -> None:
        """The backend died mid-stream: the client gets an error event and a properly ended stream, and it is counted."""
        log.warning("backend %s failed mid-stream: %s", backend.address, err)
        self.metrics.backend_failures.labels(backend.address, "mid_stream").inc()
        if resp.streaming and not resp.finished:
            message = f"the backend serving this stream failed after it started ({type(err).__name__}); retry the request"
            resp.write(b"data: " + error_body(502, message) + b"\n\n")
            resp.end()
        elif not resp.finished:
            resp.abort()

    def _account(self, series, body: bytes, prompt_words: int, streamed: bool, events: int = 0) -> None:
        """Tokens from the backend's `usage` when present; otherwise counted (prompt words, content events)."""
        found = _USAGE.findall(body)
        if found:
            prompt, output = (int(x) for x in found[-1])
        else:
            prompt, output = prompt_words, events if streamed else 0
        series.prompt_tokens.inc(prompt)
        series.output_tokens.inc(output)

    async def close(self) -> None:
        self.upstream.close()


class _Relay:
    """One backend response on its way to the client (an upstream Sink): streamed events written through as they
    are read, timed and counted; a whole response sent once complete; a retryable status or a failure before any byte
    reached the client resolves `done` with _Refused, so the request goes to another backend."""

    def __init__(self, gateway: Gateway, resp: Responder, conn, backend: Backend, series, prompt_words: int, received_s: float):
        self.gateway, self.resp, self.conn, self.backend = gateway, resp, conn, backend
        self.series, self.prompt_words, self.received_s = series, prompt_words, received_s
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.status, self.retry, self.streaming = 0, False, False
        self.ctype, self.extra = "application/json", []
        self.parts: list[bytes] = []
        self.tail = b""
        self.events = 0
        self.first = self.last = None
        self.itl = gateway.metrics.model(series.model).itl

    def on_headers(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        if status in _RETRYABLE_STATUS:
            self.retry = True
            return
        self.ctype = next((v for k, v in headers if k == "content-type"), "application/json")
        self.extra = [(k, v) for k, v in headers if k not in _HOP_HEADERS and k != "content-type"]
        if self.ctype.startswith("text/event-stream"):
            self.streaming = True
            self.resp.start_stream(status, self.ctype, self.extra)

    def on_body(self, data: bytes) -> None:
        if self.retry:
            return
        if not self.streaming:
            self.parts.append(data)
            return
        resp = self.resp
        resp.write(data)
        now = time.monotonic()
        tail = self.tail
        arrived = _count_new(tail, data, _CHOICES[0]) + _count_new(tail, data, _CHOICES[1])
        if arrived:
            if self.first is None:
                self.first, arrived = now, arrived - 1
            else:
                self.itl.observe(now - self.last)
                arrived -= 1
            for _ in range(arrived):  # events that came in the same read: no gap between them
                self.itl.observe(0.0)
            self.last = now
        self.events += _count_new(tail, data, _TOKEN_EVENT) - _count_new(tail, data, _ROLE_EVENT)
        self.tail = (tail + data)[-4096:]
        if resp.paused:  # the client reads slower than the backend writes: hold the backend until it catches up
            self.conn.pause(True)
            asyncio.get_running_loop().create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        await self.resp.drain()
        self.conn.pause(False)

    def on_complete(self) -> None:
        if self.done.done():
            return
        g, resp = self.gateway, self.resp
        if self.retry:
            return self.done.set_exception(_Refused(f"{self.backend.address} answered {self.status}"))
        if self.streaming:
            resp.end()
            if self.first is not None:
                self.series.ttft.observe(self.first - self.received_s)
            body = self.tail
        else:
            body = b"".join(self.parts)
            resp.send(self.status, body, self.ctype, self.extra)
        if self.status == 200:
            self.series.e2e.observe(time.monotonic() - self.received_s)
            g._account(self.series, body, self.prompt_words, self.streaming, self.events)
        self.done.set_result(str(self.status))

    def on_error(self, error: Exception) -> None:
        if self.done.done():
            return
        if self.resp.closed:  # the client went away (and we closed the backend's connection)
            return self.done.set_result("499")
        if not self.resp.status:  # nothing reached the client yet: another backend may serve it
            if self.conn.reused and not self.status:
                return self.done.set_exception(_Stale())
            self.gateway.pool.eject(self.backend.address)
            return self.done.set_exception(_Refused(str(error)))
        self.gateway._fail_stream(self.resp, self.backend, error)
        self.done.set_result("502")

    def client_gone(self) -> None:
        self.conn.close()


def _upstream_request(request: Request, address: str) -> bytes:
    """The client's request as sent to a backend: its headers less hop-by-hop ones, its credentials and its host."""
    lines = [f"{request.method} {request.path}{'?' + request.query if request.query else ''} HTTP/1.1", f"host: {address}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k not in _HOP_HEADERS and k not in ("host", "authorization")]
    lines.append(f"content-length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


def _count_new(before: bytes, chunk: bytes, pattern: bytes) -> int:
    """Occurrences of `pattern` that end inside `chunk`, including those that started in `before`."""
    carry = before[-(len(pattern) - 1):]
    return (carry + chunk).count(pattern) - carry.count(pattern)


def _parse_body(body: bytes) -> tuple[str, int, str] | str:
    """(model, prompt word count, prompt text) of a completion or chat request, or what is wrong with the body."""
    if not body:
        return "the request has no body: send a JSON object with model and prompt (or messages)"
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        return "the request body is not UTF-8 text"
    except ValueError as err:
        return f"the request body is not valid JSON: {err}"
    if not isinstance(doc, dict):
        return f"the request body must be a JSON object, got {type(doc).__name__}"
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        return "the request names no model: the JSON body needs a string field model"
    prompt = doc.get("prompt")
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(doc.get("messages"), list):
        text = " ".join(m["content"] for m in doc["messages"] if isinstance(m, dict) and isinstance(m.get("content"), str))
    else:
        text = ""
    return model, len(text.split()), text
