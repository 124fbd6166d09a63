"""Virtual-time runs of one engine in vLLM's benchmark modes: offline batch and fixed concurrency."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import fmean, median

from serving.engine.engine import Engine
from serving.engine.profile import Profile
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


@dataclass
class _Trace:
    arrival: float
    first: float | None = None
    last: float | None = None
    done: float | None = None
    tokens: int = 0
    itl_sum: float = 0.0


def _run(
    engine: Engine, pending: list[tuple[int, int]], concurrency: int | None, warmup: int, turnaround_s: float = 0.0
) -> RunStats:
    """Drive the engine; `concurrency=None` submits everything at t=0 (offline), else keeps N in flight, a client
    sending its next request `turnaround_s` after its last one ended. A request reaches the engine the profile's
    request overhead after its client sent it (HTTP, tokenization)."""
    now, traces, next_index = 0.0, [], 0
    max_kv = 0.0
    # offline runs (`vllm bench latency`) hand requests to the engine directly; served ones pay the server's cost
    overhead = engine.profile.efficiency.request_overhead_s if concurrency is not None else 0.0
    in_transit: deque[tuple[float, EngineRequest]] = deque()  # (when it reaches the engine, request), in that order

    def submit(at: float):
        nonlocal next_index
        prompt, output = pending[next_index]
        trace = _Trace(arrival=at)
        traces.append(trace)
        in_transit.append((at + overhead, EngineRequest(str(next_index), prompt, output, payload=trace)))
        next_index += 1

    initial = len(pending) if concurrency is None else min(concurrency, len(pending))
    for _ in range(initial):
        submit(0.0)
    while engine.has_work or in_transit:
        if not engine.has_work:
            now = max(now, in_transit[0][0])
        while in_transit and in_transit[0][0] <= now:
            engine.add(in_transit.popleft()[1])
        step = engine.step()
        now += step.duration_s
        max_kv = max(max_kv, engine.kv_usage)
        for request in step.emitted:
            trace = request.payload
            if trace.first is None:
                trace.first = now
            else:
                trace.itl_sum += now - trace.last
            trace.last = now
            trace.tokens += 1
        for request in step.finished:
            request.payload.done = now
            if concurrency is not None and next_index < len(pending):
                submit(now + turnaround_s)
    measured = traces[warmup:] or traces
    start = min(t.arrival for t in measured)
    end = max(t.done for t in measured)
    elapsed = end - start if concurrency is not None else now
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
        max_kv_usage=max_kv,
        preemptions=engine.scheduler.num_preemptions,
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
) -> RunStats:
    """`concurrency` clients each sending the next request `turnaround_s` after the last one ends (the client's own
    time to read the end of a stream and send again); the first `warmup` requests (by default the first wave) are
    left out of the figures (`vllm bench serve` keeps them: warmup=0)."""
    total = requests or max(6 * concurrency, 48)
    warmup = concurrency if warmup is None else warmup
    return _run(Engine(profile), [(prompt, output)] * total, concurrency, warmup, turnaround_s)
