"""Virtual-time runs of one engine in vLLM's benchmark modes: offline batch, fixed concurrency and open loop."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from statistics import fmean, median

from serving.engine.engine import Engine
from serving.engine.frontend import Frontend, SerialWorker
from serving.engine.profile import BLOCK_SIZE, Profile
from serving.engine.scheduler import EngineRequest


@dataclass(frozen=True)
class RunStats:
    requests: int
    elapsed_s: float
    mean_ttft_s: float
    median_ttft_s: float
    mean_itl_s: float
    mean_e2e_s: float
    output_tokens_per_s: float
    requests_per_s: float
    max_kv_usage: float
    preemptions: int
    mean_clock: float = 1.0  # the SM clock ratio over the engine's busy time (below 1 where the power limit held it)
    tensor_active: float = 0.0  # the tensor pipe's and HBM's activity over the run, as DCGM reads them (where the
    dram_active: float = 0.0  # GPU has a power model): what the GPU exporter's samples show of it


@dataclass
class _Trace:
    arrival: float
    first: float | None = None
    last: float | None = None
    done: float | None = None
    tokens: int = 0
    itl_sum: float = 0.0


class _Server:
    """One run's clients, API server and engine, in virtual time: a client's request reaches the server the profile's
    request latency (a fixed cost and one per prompt token) after it was sent, passes the server's one worker
    (`Frontend`) to the engine, and each step's outputs pass that worker again on their way to the clients, where the
    client's own worker reads them (one event loop for every stream, as `vllm bench serve` has: its clocks start when
    it sends and stop when it has read)."""

    def __init__(
        self,
        engine: Engine,
        pending: list[tuple[int, int]],
        served: bool,
        turnaround_s: float,
        closed_loop: bool = False,
        prefix_block_ids: tuple[int, ...] = (),
        client_token_s: float = 0.0,
    ):
        self.engine, self.pending, self.turnaround_s, self.closed_loop = engine, pending, turnaround_s, closed_loop
        self.prefix_block_ids = prefix_block_ids  # the prompts' shared prefix, as the prefix cache knows it
        # offline runs (`vllm bench latency`) hand requests to the engine directly; served ones pay the server's cost
        efficiency = engine.profile.efficiency if served else None
        self.latency = efficiency.request_latency_s if served else lambda prompt: 0.0
        self.frontend = Frontend(efficiency)
        self.client = SerialWorker(token_s=client_token_s)
        self.jobs: list[tuple[float, int, object]] = []  # (when it reaches the server, order, request or outputs)
        self.to_engine: deque[tuple[float, EngineRequest]] = deque()  # in the order the server handed them over
        self.traces: list[_Trace] = []  # one per request sent; a closed loop sends the next when an answer ends
        self.now = 0.0
        self.max_kv = 0.0
        self.busy_s = self.clocked_s = 0.0  # the engine's step time, and that time weighted by the step's clock
        self.tensor_s = self.dram_s = 0.0  # the steps' tensor-pipe and HBM activity, in seconds
        self._order = 0

    def _push(self, at: float, item) -> None:
        heapq.heappush(self.jobs, (at, self._order, item))
        self._order += 1

    def send(self, at: float) -> None:
        index = len(self.traces)
        prompt, output = self.pending[index]
        trace = _Trace(arrival=at)
        self.traces.append(trace)
        request = EngineRequest(str(index), prompt, output, prefix_block_ids=self.prefix_block_ids, payload=trace)
        self._push(at + self.latency(prompt), request)

    def _serve_until(self, until: float) -> None:
        """The server's worker takes every job that reached it by `until`, in arrival order."""
        while self.jobs and self.jobs[0][0] <= until:
            arrival, _, item = heapq.heappop(self.jobs)
            if isinstance(item, EngineRequest):
                self.to_engine.append((self.frontend.admit(arrival), item))
            else:
                self._deliver(arrival, *item)

    def _deliver(self, arrival: float, emitted: list[EngineRequest], finished: list[EngineRequest]) -> None:
        """The worker streams a step's outputs request by request: each client sees its token when its turn ends."""
        ended = {id(request) for request in finished}
        for request in emitted:
            at = self.client.stream(self.frontend.stream(arrival, 1, id(request) in ended))
            trace = request.payload
            if trace.first is None:
                trace.first = at
            else:
                trace.itl_sum += at - trace.last
            trace.last = at
            trace.tokens += 1
            if id(request) in ended:  # a request ends with the token it emits last (Scheduler.complete)
                self._end(trace, at)

    def _end(self, trace: _Trace, at: float) -> None:
        trace.done = at
        if self.closed_loop and len(self.traces) < len(self.pending):
            self.send(at + self.turnaround_s)

    def run(self) -> None:
        engine = self.engine
        while engine.has_work or self.jobs or self.to_engine:
            self._serve_until(self.now)
            engine.take_arrivals(self.to_engine, self.now)
            if not engine.has_work:
                upcoming = [queue[0][0] for queue in (self.jobs, self.to_engine) if queue]
                if not upcoming:
                    break
                self.now = max(self.now, min(upcoming))
                continue
            step = engine.step(self.now)
            self.now += step.duration_s
            self.busy_s += step.duration_s
            self.clocked_s += step.duration_s * step.timing.clock
            self.tensor_s += step.duration_s * step.timing.tensor_active
            self.dram_s += step.duration_s * step.timing.dram_active
            self.max_kv = max(self.max_kv, engine.kv_usage)
            if step.emitted or step.finished:
                self._push(self.now, (step.emitted, step.finished))


def _run(
    engine: Engine,
    pending: list[tuple[int, int]],
    concurrency: int | None,
    warmup: int,
    turnaround_s: float = 0.0,
    send_times: list[float] | None = None,
    shared_prefix_tokens: int = 0,
    client_token_s: float = 0.0,
) -> RunStats:
    """Drive the engine: `concurrency=None` and no `send_times` submits everything at t=0 (offline); `concurrency`
    keeps N in flight, a client sending its next request `turnaround_s` after its last answer ended; `send_times`
    sends each request at its time (open loop). Every prompt begins with the same `shared_prefix_tokens`; the
    client reads each streamed token in `client_token_s`, one at a time."""
    closed_loop = concurrency is not None
    prefix = tuple(range(shared_prefix_tokens // BLOCK_SIZE))
    served = closed_loop or send_times is not None
    server = _Server(engine, pending, served, turnaround_s, closed_loop, prefix, client_token_s)
    if send_times is None:  # offline, or a closed loop's first wave
        send_times = [0.0] * (min(concurrency, len(pending)) if closed_loop else len(pending))
    for at in send_times:
        server.send(at)
    server.run()
    return _stats(server, warmup, offline=concurrency is None and send_times is None)


def _stats(server: _Server, warmup: int, offline: bool) -> RunStats:
    measured = server.traces[warmup:] or server.traces
    start = min(t.arrival for t in measured)
    end = max(t.done for t in measured)
    elapsed = server.now if offline else end - start
    out_tokens = sum(t.tokens for t in measured)
    decode = [t.itl_sum / (t.tokens - 1) for t in measured if t.tokens > 1]
    ttfts = [t.first - t.arrival for t in measured]
    return RunStats(
        requests=len(measured),
        elapsed_s=elapsed,
        mean_ttft_s=fmean(ttfts),
        median_ttft_s=median(ttfts),
        mean_itl_s=fmean(decode) if decode else 0.0,
        mean_e2e_s=fmean(t.done - t.arrival for t in measured),
        output_tokens_per_s=out_tokens / elapsed,
        requests_per_s=len(measured) / elapsed,
        max_kv_usage=server.max_kv,
        preemptions=server.engine.scheduler.num_preemptions,
        mean_clock=server.clocked_s / server.busy_s if server.busy_s else 1.0,
        tensor_active=server.tensor_s / server.now if server.now else 0.0,
        dram_active=server.dram_s / server.now if server.now else 0.0,
    )


def offline(profile: Profile, lengths: list[tuple[int, int]]) -> RunStats:
    """All requests submitted at once, as `vllm bench latency` and `vllm bench throughput` do."""
    return _run(Engine(profile), list(lengths), None, 0)


def fixed_concurrency(
    profile: Profile,
    prompt: int,
    output: int,
    concurrency: int,
    requests: int | None = None,
    warmup: int | None = None,
    turnaround_s: float = 0.0,
    shared_prefix_tokens: int = 0,
    client_token_s: float = 0.0,
) -> RunStats:
    """`concurrency` clients each sending the next request `turnaround_s` after the last one ends (the client's own
    time to read the end of a stream and send again); the first `warmup` requests (by default the first wave) are
    left out of the figures (`vllm bench serve` keeps them: warmup=0). Every prompt may begin with the same
    `shared_prefix_tokens` (`vllm bench serve --random-prefix-len`), which the prefix cache serves after the first.
    The clients share one reader that takes `client_token_s` a streamed token (`vllm bench serve`'s event loop)."""
    total = requests or max(6 * concurrency, 48)
    warmup = concurrency if warmup is None else warmup
    pending = [(prompt, output)] * total
    engine = Engine(profile)
    return _run(engine, pending, concurrency, warmup, turnaround_s, None, shared_prefix_tokens, client_token_s)


def open_loop(
    profile: Profile, lengths: list[tuple[int, int]], send_times: list[float], client_token_s: float = 0.0
) -> RunStats:
    """Each request sent at its time whatever the server does, as `vllm bench serve --request-rate` sends them;
    every request counted, from the first send to the last answer (read by a client as in `fixed_concurrency`)."""
    if len(send_times) != len(lengths):
        raise ValueError(f"one send time per request: {len(send_times)} times for {len(lengths)} requests")
    return _run(Engine(profile), list(lengths), None, 0, send_times=sorted(send_times), client_token_s=client_token_s)
