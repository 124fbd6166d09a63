"""The gateway: OpenAI-compatible entry point in front of vLLM replicas, and Headroom's token and queue exporter.

Per request: tenant from the bearer token, body read within its limits and checked (JSON, model) before any backend
is touched, a backend slot from admission control (fair queue per model, 429 when full), forwarded with retries only
before the first byte, streamed through unbuffered, and accounted: tokens, queue wait, client-side TTFT, ITL and
end-to-end latency. A client that leaves, queued or mid-stream, cancels its request: its slot and place are freed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import ClientError, web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from exporters.gateway.admission import Admission, Rejected
from exporters.gateway.backends import Backend, BackendPool
from exporters.gateway.config import GatewayConfig, ModelLimits, SloThresholds
from exporters.gateway.metrics import UNKNOWN_MODEL, GatewayMetrics, StateCollector
from exporters.gateway.request_body import BodyError, parse_generation, read_body
from exporters.gateway.slo import RequestTimings, slo_outcomes, time_per_output_token
from exporters.gateway.stream_meter import StreamMeter, usage_tokens
from exporters.gateway.tenants import KeyRing, TenantLabels
from exporters.gateway.upstream import StaleConnection, Upstream, UpstreamError, forwarded_headers
from serving.common.http.errors import error_body

log = logging.getLogger("headroom.gateway")
GENERATION_ROUTES = ("/v1/completions", "/v1/chat/completions")
_RETRYABLE_STATUS = (502, 503, 504)
_MAX_UNLISTED_MODELS = 32
_READ_ONLY_ROUTES = ("/metrics", "/health", "/ready", "/v1/models")


class _Refused(Exception):
    """Why a backend could not take the request before any byte reached the client (try another)."""


class _ClientGone(Exception):
    """The client closed its connection mid-response."""


async def _to_client(write):
    """Await a write to the client; its connection closing is the client leaving, never a backend failure (aiohttp
    raises ClientConnectionResetError, a ClientError, for both sides)."""
    try:
        return await write
    except ConnectionResetError:
        raise _ClientGone() from None


def json_error(status: int, message: str, param: str | None = None, headers: dict | None = None) -> web.Response:
    return web.Response(
        status=status, body=error_body(status, message, param), content_type="application/json", headers=headers
    )


class Gateway:
    def __init__(self, config: GatewayConfig, registry: CollectorRegistry | None = None, keys: KeyRing | None = None):
        self.config = config
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.metrics = GatewayMetrics(self.registry)
        self.keys = keys if keys is not None else KeyRing.from_file(config.keys_file)
        self.tenants = TenantLabels(config.tenant_label_cap, on_dropped=self.metrics.forget_tenant)
        self.pool = BackendPool(config.max_in_flight_per_backend, on_change=self._backends_changed)
        self.admission = Admission(self.pool, self._limits)
        self.registry.register(StateCollector(self.pool, self.admission, self._model_label))
        self.upstream = Upstream(config.connect_timeout_s, config.first_byte_timeout_s)
        self.serve_metrics = config.metrics_port is None  # else /metrics is on its own listener
        self._configured_models = frozenset(config.models)  # read on every request: built once
        self._unlisted_models: set[str] = set()  # names accepted while no model list was known

    # ---- backends ----------------------------------------------------------------------
    def set_backends(self, addresses: list[str]) -> None:
        """The discovered backends (a static list, file_sd, Kubernetes, or the local fleet's ready replicas)."""
        self.pool.set_discovered(list(addresses))
        self.metrics.backends_seen(addresses)

    def _backends_changed(self) -> None:
        self.admission.dispatch()

    def _limits(self, model: str) -> ModelLimits:
        return self.config.models.get(model, self.config.default_limits)

    def slo_of(self, model: str) -> SloThresholds:
        return self._limits(model).slo

    def known_models(self) -> frozenset[str] | set[str] | None:
        """The models requests may name: the configured ones, else those the backends report (None: any)."""
        return self._configured_models or self.pool.models()

    def _model_label(self, model: str) -> str:
        """A model's metric label: its name once configured or reported by a backend, else `unknown`."""
        known = self.known_models()
        return model if known is not None and model in known else UNKNOWN_MODEL

    # ---- HTTP --------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        if path in GENERATION_ROUTES:
            if method != "POST":
                return json_error(405, f"method {method} not allowed on {path}", headers={"allow": "POST"})
            return await self._generate(request)
        if path in _READ_ONLY_ROUTES and method not in ("GET", "HEAD"):
            return json_error(405, f"method {method} not allowed on {path}", headers={"allow": "GET, HEAD"})
        if path == "/metrics" and self.serve_metrics:
            return self.metrics_response()
        if path == "/health":
            return web.Response(status=200)
        if path == "/ready":
            return web.Response(status=200) if self.pool.routable() else json_error(503, "no ready backend")
        if path == "/v1/models":
            return self._models()
        return json_error(404, f"no route {method} {path[:200]}")

    def metrics_response(self) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"content-type": CONTENT_TYPE_LATEST})

    def _models(self) -> web.Response:
        names = sorted(self.known_models() or ())
        body = {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "headroom"} for n in names]}
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    def _reject(
        self,
        status: int,
        reason: str,
        message: str,
        model: str = "",
        tenant: str = "other",
        retry_after_s: int | None = None,
        param: str | None = None,
        close: bool = False,
    ) -> web.Response:
        self.metrics.child(self.metrics.rejections, model, tenant, reason).inc()
        self.metrics.series(model, tenant).answered(str(status))
        headers = {"retry-after": str(retry_after_s)} if retry_after_s is not None else None
        response = json_error(status, message, param, headers)
        if close:  # the body was not read: the connection cannot carry another request
            response.force_close()
        return response

    async def _generate(self, request: web.BaseRequest) -> web.StreamResponse:
        tenant = self.keys.tenant(request.headers.get("authorization"))
        if tenant is None:
            return self._reject(
                401, "unauthorized", "missing or unknown API key: send Authorization: Bearer <key>", close=True
            )
        label = self.tenants.label(tenant)
        try:
            body = await read_body(request, self.config.limits)
            received_s = time.monotonic()
            model, prompt_words, affinity_text = parse_generation(body)
        except BodyError as bad:
            return self._reject(bad.status, "invalid", str(bad), tenant=label, param=bad.param, close=bad.close)
        unknown = self._admit_model_name(model)
        if unknown is not None:
            return self._reject(404, "unknown_model", unknown, tenant=label, param="model")
        affinity = (
            affinity_text[: self.config.prefix_affinity_chars] if self.config.routing == "prefix_affinity" else None
        )
        model_label = self._model_label(model)
        try:
            backend, waited = await self.admission.acquire(model, tenant, affinity)
        except Rejected as no:
            status = 503 if no.reason == "no_backend" else 429
            return self._reject(status, no.reason, str(no), model_label, label, no.retry_after_s)
        except asyncio.CancelledError:  # the client left while queued: its place is freed (admission) and counted
            self.metrics.series(model_label, label).answered("499")
            raise
        self.metrics.model(model_label).queue_wait.observe(waited)
        forwarding = _Forwarding(
            self,
            request,
            body,
            model,
            self.metrics.series(model_label, label),
            prompt_words,
            (tenant, affinity),
            received_s,
        )
        return await forwarding.run(backend)

    def _admit_model_name(self, model: str) -> str | None:
        """Why a request's model is refused, or None. While no model list is known, a bounded set of names is let
        through (the backends answer for them); their metrics carry the label `unknown`."""
        allowed = self.known_models()
        if allowed is not None:
            return None if model in allowed else f"The model `{model[:256]}` does not exist."
        if model in self._unlisted_models:
            return None
        if len(self._unlisted_models) >= _MAX_UNLISTED_MODELS:
            return f"The model `{model[:256]}` is not known yet: the backends have not reported the models they serve"
        self._unlisted_models.add(model)
        return None

    def fail_stream_event(self, backend: Backend, err: BaseException) -> bytes:
        """The error event that ends a stream whose backend failed after it started, counted."""
        log.warning("backend %s failed mid-stream: %s", backend.address, err)
        self.metrics.backend_failures.labels(backend.address, "mid_stream").inc()
        message = f"the backend serving this stream failed after it started ({type(err).__name__}); retry the request"
        return b"data: " + error_body(502, message) + b"\n\n"

    async def close(self) -> None:
        await self.upstream.close()


class _Forwarding:
    """One admitted request on its way to a backend and back: up to max_attempts backends, each before any byte
    reached the client. When no other backend is routable, the request waits in the queue again (`requeue_as`: its
    tenant and affinity) for one: a backend taken out for a refused connection comes back at its next passed health
    check, a new replica as it is discovered."""

    def __init__(
        self,
        gateway: Gateway,
        request: web.BaseRequest,
        body: bytes,
        model: str,
        series,
        prompt_words: int,
        requeue_as: tuple[str, str | None],
        received_s: float,
    ):
        self.gateway, self.request, self.body, self.model = gateway, request, body, model
        self.series, self.prompt_words, self.requeue_as = series, prompt_words, requeue_as
        self.received_s = received_s  # when the body's last byte was read: client-side latencies count from here
        self.response: web.StreamResponse | None = None  # once set, bytes went to the client: never resent
        self.path_qs = request.rel_url.raw_path_qs
        self.headers = forwarded_headers(request.headers)

    async def run(self, backend: Backend) -> web.StreamResponse:
        g = self.gateway
        tried, reason = {backend.address}, ""
        for attempt in range(g.config.max_attempts):
            if attempt:
                g.metrics.model(self.series.model).retries.inc()
            try:
                return await self._on(backend)
            except _Refused as why:
                reason = str(why)
                g.metrics.backend_failures.labels(backend.address, "connect").inc()
            except _ClientGone:  # the backend's connection was closed on the way out, so it stops generating
                self.series.answered("499")
                return self.response
            except asyncio.CancelledError:  # the client left before the answer began
                self.series.answered("499")
                raise
            finally:
                g.admission.release(backend)
            if attempt + 1 == g.config.max_attempts:
                break
            backend = await self._next_backend(tried)
            if isinstance(backend, str):
                reason = f"{reason}; then {backend}"
                break
            tried.add(backend.address)
        self.series.answered("503")
        return json_error(503, f"no backend could serve the request: {reason}", headers={"retry-after": "1"})

    async def _next_backend(self, tried: set[str]) -> Backend | str:
        """Another backend now (it already waited its turn), else a queued wait for any; a string says why none."""
        g = self.gateway
        backend = g.pool.pick(self.model, exclude=tried, within_capacity=False)
        if backend is not None:
            g.pool.acquire(backend)
            return backend
        try:
            backend, waited = await g.admission.acquire(self.model, *self.requeue_as)
        except Rejected as no:
            return str(no)
        g.metrics.model(self.series.model).queue_wait.observe(waited)
        return backend

    async def _on(self, backend: Backend) -> web.StreamResponse:
        """Send to one backend and answer the client; raises _Refused when another backend should be tried."""
        try:
            try:
                return await self._exchange(backend, fresh=False)
            except StaleConnection:  # the backend had closed that idle connection: the same backend, a new connection
                return await self._exchange(backend, fresh=True)
        except UpstreamError as err:
            self.gateway.pool.eject(backend.address)
            raise _Refused(str(err)) from None

    async def _exchange(self, backend: Backend, fresh: bool) -> web.StreamResponse:
        g = self.gateway
        try:
            async with asyncio.timeout(g.config.request_timeout_s):
                async with g.upstream.request(
                    backend.address, self.request.method, self.path_qs, self.headers, self.body, fresh
                ) as answer:
                    if answer.status in _RETRYABLE_STATUS:
                        raise _Refused(f"{backend.address} answered {answer.status}")
                    if answer.headers.get("content-type", "").startswith("text/event-stream"):
                        return await self._stream(answer, backend)
                    return await self._whole(answer)
        except (ClientError, TimeoutError) as err:
            if self.response is None:
                raise UpstreamError(f"{backend.address}: {type(err).__name__} {err}") from None
            return await self._end_failed_stream(backend, err)

    async def _whole(self, answer) -> web.Response:
        body = await answer.read()
        response = web.Response(status=answer.status, body=body, headers=forwarded_headers(answer.headers, frozenset()))
        self._finish(str(answer.status), answer.status, body, meter=None)
        return response

    async def _stream(self, answer, backend: Backend) -> web.StreamResponse:
        response = self.response = web.StreamResponse(
            status=answer.status, headers=forwarded_headers(answer.headers, frozenset())
        )
        await _to_client(response.prepare(self.request))
        meter = StreamMeter(self.gateway.metrics.model(self.series.model).itl)
        async for data in answer.content.iter_any():
            await _to_client(response.write(data))
            meter.feed(data, time.monotonic())
        await _to_client(response.write_eof())
        if meter.first is not None:
            self.series.ttft.observe(meter.first - self.received_s)
        self._finish(str(answer.status), answer.status, meter.tail, meter)
        return response

    async def _end_failed_stream(self, backend: Backend, err: BaseException) -> web.StreamResponse:
        """The backend died or timed out mid-stream: the client gets an error event and a properly ended stream."""
        response = self.response
        try:
            await response.write(self.gateway.fail_stream_event(backend, err))
            await response.write_eof()
        except ConnectionResetError:
            pass
        self.series.answered("502")
        return response

    def _finish(self, status_text: str, status: int, body: bytes, meter: StreamMeter | None) -> None:
        """Account an answer that ended: its status, and for a 200 its latency, tokens and SLO outcomes."""
        self.series.answered(status_text)
        if status != 200:
            return
        e2e = time.monotonic() - self.received_s
        self.series.e2e.observe(e2e)
        prompt, output = usage_tokens(body) or (self.prompt_words, meter.events if meter else 0)
        self.series.prompt_tokens.inc(prompt)
        self.series.output_tokens.inc(output)
        timings = (
            RequestTimings(e2e)
            if meter is None or meter.first is None
            else RequestTimings(
                e2e, meter.first - self.received_s, time_per_output_token(meter.first, meter.last, output)
            )
        )
        for slo, met in slo_outcomes(timings, self.gateway.slo_of(self.model)):
            self.series.judged(slo, met)
