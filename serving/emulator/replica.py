"""One emulated vLLM replica on the wall clock: the engine loop, the OpenAI API, /metrics and a GPU endpoint."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import random
import signal
import socket
import time
from collections import deque
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field

from serving.common.http.limits import ListenerLimits
from serving.common.http.server import Request, Responder, error_json, serve
from serving.common.strict import Strict
from serving.contracts.dcgm_fields import render_dcgm
from serving.emulator.gpu import DcgmCollector, GpuModel
from serving.emulator.metrics import HttpMetrics, VllmMetrics
from serving.emulator.openai import (
    DONE,
    ApiError,
    GenerationRequest,
    StreamEncoder,
    parse_generation,
    word,
)
from serving.engine.engine import Engine, StepResult
from serving.engine.profile import BLOCK_SIZE, Profile
from serving.engine.scheduler import EngineRequest, Status

log = logging.getLogger("headroom.emulator")
MAX_LAG_S = 0.05  # how far behind the engine clock may fall before it stops catching up

# request timing (TTFT, ITL, the request log) on the monotonic clock itself: uvloop's loop.time() is the same clock
# rounded to the millisecond, too coarse for the timings a load generator is checked against
_now = time.monotonic


class Faults(Strict):
    """Fault injection for tests; also settable at run time with POST /admin/faults."""

    error_rate: float = Field(0.0, ge=0, le=1, description="share of generation requests answered 500")
    slow_factor: float = Field(1.0, ge=1, description="multiplier on every step's duration")
    stall_s: float = Field(0.0, ge=0, description="freeze the engine for this long, from when it is set")
    crash_after_s: float | None = Field(
        None, ge=0, description="exit abruptly this long after start (or after being set)"
    )


class EmulatorConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    gpu_port: int | None = Field(
        None, ge=0, le=65535, description="dcgm-exporter style endpoint; None: no GPU endpoint"
    )
    served_model_name: str | None = None
    cold_start_s: float = Field(0.0, ge=0)
    eos_mean_tokens: float = Field(200.0, gt=0, description="mean natural output length when ignore_eos is false")
    seed: int = 0
    faults: Faults = Faults()
    request_log: Path | None = Field(
        None, description="append one JSON line per finished request (id, server-side timing)"
    )
    limits: ListenerLimits = ListenerLimits()


class _Live:
    """A request in flight: its response, encoder and timestamps."""

    __slots__ = ("arrival", "done", "enc", "engine_req", "first", "gen", "last", "parts", "resp", "scheduled", "seed")

    def __init__(self, gen: GenerationRequest, resp: Responder, enc: StreamEncoder, arrival: float, seed: int):
        self.gen, self.resp, self.enc, self.arrival, self.seed = gen, resp, enc, arrival, seed
        self.scheduled = self.first = self.last = None
        self.parts: list[bytes] = []
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.engine_req: EngineRequest | None = None


class Replica:
    """Wires an Engine to HTTP. All engine work happens in one loop task; handlers only enqueue and wait."""

    def __init__(self, profile: Profile, config: EmulatorConfig):
        self.profile = profile
        self.config = config
        self.model_name = config.served_model_name or profile.model.name
        self.engine = Engine(profile)
        self.loop = asyncio.get_running_loop()
        self._request_log = open(config.request_log, "a", buffering=1) if config.request_log else None  # noqa: SIM115
        self.started_at = self.loop.time()
        self.draining = False
        self.engine_failed = False  # the engine loop died: /health answers 500, as vLLM's does on a dead engine
        self.faults = config.faults
        self._stall_until = 0.0
        self._crash_handle: asyncio.TimerHandle | None = None
        self._rng = random.Random(config.seed)
        self._ids = itertools.count()
        self._wake = asyncio.Event()
        self._live: set[_Live] = set()
        self._arriving: deque[tuple[float, EngineRequest]] = deque()  # reached the engine core, not yet scheduled
        self._prefix_seen = (0, 0)

        prometheus_client.disable_created_metrics()  # vLLM's contract has no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        sched = profile.scheduler
        self.metrics = VllmMetrics(
            self.model_name,
            profile.model.max_model_len,
            {
                "block_size": str(BLOCK_SIZE),
                "num_gpu_blocks": str(profile.num_gpu_blocks),
                "gpu_memory_utilization": str(sched.gpu_memory_utilization),
                "cache_dtype": "auto",
                "enable_prefix_caching": str(sched.enable_prefix_caching),
            },
            registry=self.registry,
        )
        self.http_metrics = HttpMetrics(self.registry)
        self.gpu = GpuModel(profile, self.loop.time())
        self.gpu.loaded_at = self.started_at + config.cold_start_s
        self.gpu_registry = CollectorRegistry(auto_describe=False)
        self.gpu_registry.register(
            DcgmCollector(self.gpu, self.loop.time, socket.gethostname(), f"{config.host}:{config.port}")
        )
        self._apply_faults(self.faults)

    # ---- state -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return not self.draining and self.loop.time() >= self.started_at + self.config.cold_start_s

    @property
    def in_flight(self) -> int:
        return len(self._live)

    def _apply_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._stall_until = _now() + faults.stall_s if faults.stall_s else 0.0
        if self._crash_handle:
            self._crash_handle.cancel()
            self._crash_handle = None
        if faults.crash_after_s is not None:
            self._crash_handle = self.loop.call_later(faults.crash_after_s, _crash)
        self._wake.set()

    # ---- engine loop --------------------------------------------------------------------
    async def run_engine(self) -> None:
        """Step the engine on the wall clock. A bug here fails every open request instead of hanging it."""
        try:
            await self._engine_loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("engine loop failed; failing all open requests")
            self.draining = self.engine_failed = True
            for live in list(self._live):
                if live.resp.status:
                    live.resp.abort()
                else:
                    error_json(live.resp, 500, "engine failure")
                self._complete(live)
            raise

    async def _engine_loop(self) -> None:
        clock = _now()
        while True:
            if not self.engine.has_work and not self._arriving:
                self._wake.clear()
                await self._wake.wait()
                clock = _now()
                continue
            now = _now()
            if self._stall_until > now:
                await asyncio.sleep(self._stall_until - now)
                clock = _now()
                continue
            start = max(clock, now - MAX_LAG_S)
            self.engine.take_arrivals(self._arriving, start)
            if not self.engine.has_work:  # what reached the idle engine came after `start`: it starts then
                clock = self._arriving[0][0]
                continue
            step = self.engine.step(start)
            clock = start + step.duration_s * self.faults.slow_factor
            delay = clock - _now()
            await asyncio.sleep(max(0, delay))
            self._deliver(step, start, _now())
            # let the loop send what this step wrote before the next step is computed: uvloop flushes writes at the
            # end of a loop iteration, so without this every token would leave one step computation late
            await asyncio.sleep(0)

    def _deliver(self, step: StepResult, start: float, now: float) -> None:
        m = self.metrics
        for request in step.batch.admitted:
            live = request.payload
            if live.scheduled is None:
                live.scheduled = start
                m.queue_time.observe(start - live.arrival)
        itl, ttft = m.itl.observe, m.ttft.observe
        for request in step.emitted:
            live: _Live = request.payload
            index = request.output_tokens - 1
            text = word(index, live.seed)
            if index == 0:
                live.first = now
                ttft(now - live.arrival)
                m.prompt_tokens.inc(request.prompt_tokens)
                self._count_prompt_sources(request)
            else:
                itl(now - live.last)
            live.last = now
            if live.gen.stream:
                finished = request.status is Status.FINISHED
                if index == 0 and live.gen.chat:
                    live.resp.write(live.enc.role_chunk())
                live.resp.write(live.enc.token_chunk(text, request.finish_reason if finished else None))
            else:
                live.parts.append(text)
        if step.emitted:
            m.generation_tokens.inc(len(step.emitted))
        m.iteration_tokens.observe(step.batch.shape.total_tokens)
        m.flops.inc(step.timing.flops)
        m.read_bytes.inc(step.timing.bytes_moved)
        m.write_bytes.inc(step.timing.written_bytes)
        if step.batch.preempted:
            m.num_preemptions.inc(len(step.batch.preempted))
        for request in step.finished:
            self._finish(request.payload, request, now)
        self._update_gauges()
        self.gpu.record_step(now, step.timing)

    def _count_prompt_sources(self, request: EngineRequest) -> None:
        """A prompt's tokens are computed here or read from the local prefix cache (no KV transfer here)."""
        m, cached = self.metrics, request.prefix_hit_tokens
        m.prompt_tokens_by_source["local_compute"].inc(request.prompt_tokens - cached)
        m.prompt_tokens_by_source["local_cache_hit"].inc(cached)
        m.prompt_tokens_cached.inc(cached)

    def _update_gauges(self) -> None:
        m, sched = self.metrics, self.engine.scheduler
        waiting = len(sched.waiting) + len(self._arriving)  # vLLM counts a request waiting once its core has it
        m.num_requests_running.set(len(sched.running))
        m.num_requests_waiting.set(waiting)
        m.waiting_by_reason["capacity"].set(waiting)  # nothing defers a request here (no LoRA, no KV transfer)
        m.kv_cache_usage.set(sched.kv.usage)
        self.gpu.used_blocks = sched.kv.used_blocks
        queries, hits = sched.prefix_queries_tokens, sched.prefix_hits_tokens
        if (queries, hits) != self._prefix_seen:
            m.prefix_cache_queries.inc(queries - self._prefix_seen[0])
            m.prefix_cache_hits.inc(hits - self._prefix_seen[1])
            self._prefix_seen = (queries, hits)

    def _finish(self, live: _Live, request: EngineRequest, now: float) -> None:
        m, gen = self.metrics, live.gen
        reason = request.finish_reason or "stop"
        n = request.output_tokens
        m.request_success[reason].inc()
        m.e2e.observe(now - live.arrival)
        scheduled = live.scheduled if live.scheduled is not None else now
        m.inference_time.observe(now - scheduled)
        m.prefill_time.observe((live.first or now) - scheduled)
        m.decode_time.observe(now - (live.first or now))
        if n > 1:
            m.tpot.observe((now - live.first) / (n - 1))
        m.request_prompt_tokens.observe(request.prompt_tokens)
        m.request_generation_tokens.observe(n)
        m.request_max_generation_tokens.observe(request.max_tokens)
        m.request_params_max_tokens.observe(request.max_tokens)
        m.request_params_n.observe(1)
        m.request_prefill_kv_computed_tokens.observe(request.prompt_tokens - request.prefix_hit_tokens)
        if self._request_log is not None:
            self._request_log.write(
                json.dumps(
                    {
                        "id": live.enc.request_id,
                        "arrival": live.arrival,
                        "ttft_s": (live.first or now) - live.arrival,
                        "e2e_s": now - live.arrival,
                        "queue_s": scheduled - live.arrival,
                        "prompt_tokens": request.prompt_tokens,
                        "output_tokens": n,
                        "finish_reason": reason,
                    }
                )
                + "\n"
            )
        if gen.stream:
            if gen.include_usage:
                live.resp.write(live.enc.usage_chunk(request.prompt_tokens, n))
            live.resp.write(DONE)
            live.resp.end()
        else:
            body = live.enc.full_response(b"".join(live.parts).decode(), reason, request.prompt_tokens, n)
            live.resp.send(200, body)
        self._complete(live)

    def _complete(self, live: _Live) -> None:
        self._live.discard(live)
        if not live.done.done():
            live.done.set_result(None)

    def _abort(self, live: _Live) -> None:
        """The client went away: free the request's KV blocks as vLLM does."""
        request = live.engine_req
        if request is not None and request.status is not Status.FINISHED:
            pending = [entry for entry in self._arriving if entry[1] is request]
            if pending:  # its engine core has it, no step yet
                self._arriving.remove(pending[0])
            else:
                self.engine.abort(request)
            self.metrics.request_success["abort"].inc()
            self._update_gauges()
        self._complete(live)

    # ---- HTTP ---------------------------------------------------------------------------
    async def handle(self, request: Request, resp: Responder) -> None:
        t0 = _now()
        route = request.path
        try:
            await self._route(request, resp, route)
        finally:
            handler = route if route in _ROUTES else "other"
            self.http_metrics.observe(handler, request.method, resp.status or 499, _now() - t0)

    async def _route(self, request: Request, resp: Responder, route: str) -> None:
        allowed = _ROUTES.get(route)
        if allowed is None:
            return error_json(resp, 404, f"no route {route[:200]}")
        if request.method not in allowed:
            return error_json(resp, 405, f"method {request.method[:16]} not allowed on {route}")
        if route == "/v1/completions":
            return await self._generate(request, resp, chat=False)
        if route == "/v1/chat/completions":
            return await self._generate(request, resp, chat=True)
        if route == "/metrics":
            return resp.send(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if route == "/health":
            return error_json(resp, 500, "engine loop failed") if self.engine_failed else resp.send(200, b"")
        if route.startswith("/admin/") and not request.from_loopback:
            return error_json(resp, 403, f"{route} answers only to clients on this host")
        if route == "/ready":
            return resp.send(200, b'{"ready": true}') if self.ready else error_json(resp, 503, self._not_ready_reason())
        if route == "/v1/models":
            return resp.send(200, self._models())
        if route == "/admin/faults":
            return self._set_faults(request, resp)
        if route == "/admin/state":
            return resp.send(200, json.dumps(self.state()).encode())

    def _not_ready_reason(self) -> str:
        if self.draining:
            return "replica is draining"
        left = self.started_at + self.config.cold_start_s - self.loop.time()
        return f"replica is starting (cold start, {max(0.0, left):.1f} s left)"

    def state(self) -> dict:
        return {
            "ready": self.ready,
            "draining": self.draining,
            "in_flight": self.in_flight,
            "running": self.engine.num_running,
            "waiting": self.engine.num_waiting,
            "kv_usage": self.engine.kv_usage,
        }

    def _models(self) -> bytes:
        return json.dumps(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model_name,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": self.model_name,
                        "parent": None,
                        "max_model_len": self.profile.model.max_model_len,
                    }
                ],
            }
        ).encode()

    def _set_faults(self, request: Request, resp: Responder) -> None:
        try:
            faults = Faults.model_validate_json(request.body or b"{}")
        except ValueError as err:
            return error_json(resp, 400, f"invalid faults: {err}")
        self._apply_faults(faults)
        resp.send(200, faults.model_dump_json().encode())

    async def _generate(self, request: Request, resp: Responder, chat: bool) -> None:
        if not self.ready:
            return error_json(resp, 503, self._not_ready_reason())
        try:
            gen, _ = parse_generation(request.body, chat, self.model_name, self.profile.model.max_model_len)
        except ApiError as err:
            return error_json(resp, err.status, err.message, err.param)
        if self.faults.error_rate and self._rng.random() < self.faults.error_rate:
            self.metrics.request_success["error"].inc()
            return error_json(resp, 500, "injected fault: engine error")
        request_id = f"{'chatcmpl' if chat else 'cmpl'}-{os.getpid():x}{next(self._ids):08x}"
        # arrival: when the request's last byte reached the server, so the server's own timing covers its HTTP handling
        live = _Live(
            gen,
            resp,
            StreamEncoder(chat, request_id, self.model_name),
            request.received_s or _now(),
            self._rng.randrange(1 << 30),
        )
        stop_after = (
            None if gen.ignore_eos else max(1, math.ceil(self._rng.expovariate(1.0 / self.config.eos_mean_tokens)))
        )
        engine_req = EngineRequest(
            request_id,
            gen.prompt_tokens,
            gen.max_tokens,
            stop_after,
            gen.prefix_block_ids,
            arrival=live.arrival,
            payload=live,
        )
        self._live.add(live)
        if gen.stream:
            resp.start_stream()
        resp.on_close = lambda: self._abort(live)
        await self._reach_engine(live, engine_req)
        await live.done

    async def _reach_engine(self, live: _Live, request: EngineRequest) -> None:
        """The engine takes the request the profile's request latency for its prompt after it arrived (real vLLM's HTTP,
        tokenization and hand-off to its engine core, less what this server spent already), unless the client left."""
        wait = live.arrival + self.profile.efficiency.request_latency_s(request.prompt_tokens) - _now()
        if wait > 0:
            await asyncio.sleep(wait)
            if live.done.done():  # gone meanwhile: _abort completed it before the engine saw it
                return
        live.engine_req = request
        self._arriving.append((_now(), request))
        self._update_gauges()
        self._wake.set()

    # ---- lifecycle ------------------------------------------------------------------------
    async def drain(self) -> None:
        """Stop taking requests (503, not ready), let in-flight ones finish."""
        self.draining = True
        while self._live:
            await asyncio.gather(*(live.done for live in list(self._live)), return_exceptions=True)


_ROUTES = {
    "/v1/completions": ("POST",),
    "/v1/chat/completions": ("POST",),
    "/v1/models": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/health": ("GET", "HEAD"),
    "/ready": ("GET", "HEAD"),
    "/admin/faults": ("POST",),
    "/admin/state": ("GET", "HEAD"),
}


def _crash() -> None:
    log.error("injected fault: crashing")
    os._exit(3)


async def _serve_gpu(replica: Replica, request: Request, resp: Responder) -> None:
    if request.path != "/metrics":
        return error_json(resp, 404, f"no route {request.path}")
    resp.send(200, render_dcgm(replica.gpu_registry), CONTENT_TYPE_LATEST)


async def run_replica(
    profile: Profile, config: EmulatorConfig, started: asyncio.Future | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until `stop` is set (default: on SIGTERM/SIGINT), then drain and return."""
    replica = Replica(profile, config)
    servers = [await serve(replica.handle, config.host, config.port, config.limits)]
    if config.gpu_port is not None:
        servers.append(
            await serve(lambda rq, rs: _serve_gpu(replica, rq, rs), config.host, config.gpu_port, config.limits)
        )
    engine_task = asyncio.create_task(replica.run_engine())
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            replica.loop.add_signal_handler(sig, stop.set)
    ports = [s.port for s in servers]
    log.info(
        "emulating %s (%s) on %s:%s, GPU endpoint %s, cold start %.1f s",
        replica.model_name,
        profile.name,
        config.host,
        ports[0],
        ports[1] if len(ports) > 1 else "off",
        config.cold_start_s,
    )
    if started is not None:
        started.set_result((replica, ports))
    await stop.wait()
    await replica.drain()
    for server in servers:
        server.close()
    engine_task.cancel()
