"""The planner's arithmetic, pure: for each candidate profile, the replicas that carry the traffic within the SLO
(from the profile's capacity atlas), their GPUs and cost, and the latency they give; cheapest first."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from autoscaler.capacity.atlas import Atlas, OffGrid, at_size


@dataclass(frozen=True)
class Traffic:
    rate_rps: float  # the peak request rate to plan for
    prompt_tokens: float  # mean prompt length
    output_tokens: float  # mean output length

    def __post_init__(self):
        for name in ("rate_rps", "prompt_tokens", "output_tokens"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"traffic {name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Slo:
    ttft_s: float = 1.0
    itl_s: float = 0.05  # mean inter-token latency of a request
    goal: float = 0.99  # share of requests within both

    def __iter__(self):
        return iter((self.ttft_s, self.itl_s, self.goal))

    def __post_init__(self):
        if not (self.ttft_s > 0 and self.itl_s > 0):
            raise ValueError(f"SLO latencies must be positive, got ttft {self.ttft_s!r} s, itl {self.itl_s!r} s")
        if not 0 < self.goal < 1:
            raise ValueError(f"SLO attainment goal must be between 0 and 1 (exclusive), got {self.goal!r}")


@dataclass(frozen=True)
class Candidate:
    profile: str
    gpu: str
    gpus_per_replica: int
    price_per_gpu_hour: float
    atlas: Atlas


@dataclass(frozen=True)
class PlanRow:
    profile: str
    gpu: str
    gpus_per_replica: int
    price_per_gpu_hour: float
    replica_capacity_rps: float  # requests/s per replica within the SLO at the goal, for this mix, in a fleet this size
    replicas: int
    gpus: int
    cost_per_hour: float
    cost_per_million_output_tokens: float
    cost_per_million_tokens: float  # prompt and output tokens together
    load_per_replica: float  # the planned replicas' share of their SLO capacity
    ttft_p95_s: float  # at the planned replicas, traffic spread evenly
    itl_p50_s: float
    meets_slo: bool
    note: str = ""
    why_not_fewer: str = ""  # why one replica fewer is not planned: its load against the capacity, and its source

    def as_dict(self) -> dict:
        return asdict(self)


def replicas_needed(rate_rps: float, capacity_rps: float) -> int:
    return max(1, math.ceil(rate_rps / capacity_rps - 1e-9))


def fleet_for(rate_rps: float, capacity_of: Callable[[int], float], max_replicas: int) -> tuple[int, float]:
    """The fewest replicas n whose pooled capacity carries the rate (a fleet carries more per replica than a lone
    one, so n is searched upward from the lone replica's answer), and the capacity per replica at n."""
    n = replicas_needed(rate_rps, capacity_of(max_replicas))
    while n < max_replicas and n * capacity_of(n) < rate_rps * (1 - 1e-9):
        n += 1
    return n, capacity_of(n)


def plan_one(traffic: Traffic, slo: Slo, candidate: Candidate, max_replicas: int = 512) -> PlanRow:
    atlas = candidate.atlas
    try:
        per_size = atlas.capacity_by_size(traffic.prompt_tokens, traffic.output_tokens, *slo)
    except OffGrid as err:
        return _unmet(traffic, slo, candidate, 0.0, 0, str(err))
    capacity_of = lambda n: at_size(per_size, n)
    capacity = capacity_of(1)
    if capacity <= 0:
        return _unmet(
            traffic,
            slo,
            candidate,
            0.0,
            0,
            f"no rate of this length mix meets the SLO on one replica: at "
            f"light load {atlas.light_load_attainment(traffic.prompt_tokens, traffic.output_tokens, slo.ttft_s, slo.itl_s):.2%} "
            f"of requests are within it, the goal is {slo.goal:.2%}",
        )
    replicas, capacity = fleet_for(traffic.rate_rps, capacity_of, max_replicas)
    if replicas > max_replicas or replicas * capacity < traffic.rate_rps * (1 - 1e-9):
        needed = max(replicas, math.ceil(traffic.rate_rps / capacity))
        return _unmet(
            traffic, slo, candidate, capacity, needed, f"needs {needed} replicas, above the {max_replicas} allowed"
        )
    row = _row(traffic, slo, candidate, capacity, replicas, True, "")
    return replace(row, why_not_fewer=why_not_fewer(traffic, slo, atlas, capacity_of, replicas))


def why_not_fewer(traffic: Traffic, slo: Slo, atlas: Atlas, capacity_of: Callable[[int], float], replicas: int) -> str:
    """One replica fewer in words: the load each would carry against the capacity per replica at that size."""
    if replicas <= 1:
        return ""
    fewer = replicas - 1
    load, capacity = traffic.rate_rps / fewer, capacity_of(fewer)
    return (
        f"{fewer} replica(s) would each carry {load:.3g} req/s, {load / capacity - 1:.1%} above the {capacity:.3g} "
        f"req/s per replica that keeps {slo.goal:.2%} within the SLO; capacity "
        f"{atlas.mix_source(traffic.prompt_tokens, traffic.output_tokens)}"
    )


def _unmet(traffic: Traffic, slo: Slo, candidate: Candidate, capacity: float, replicas: int, note: str) -> PlanRow:
    return _row(traffic, slo, candidate, capacity, replicas, False, note)


def _row(
    traffic: Traffic, slo: Slo, candidate: Candidate, capacity: float, replicas: int, meets: bool, note: str
) -> PlanRow:
    gpus = replicas * candidate.gpus_per_replica
    cost = gpus * candidate.price_per_gpu_hour
    million_per_hour = lambda tokens: traffic.rate_rps * tokens * 3600.0 / 1e6
    ttft, itl = (
        candidate.atlas.latency(
            traffic.prompt_tokens, traffic.output_tokens, traffic.rate_rps / replicas, *slo, replicas=replicas
        )
        if replicas
        else (math.nan, math.nan)
    )
    return PlanRow(
        candidate.profile,
        candidate.gpu,
        candidate.gpus_per_replica,
        candidate.price_per_gpu_hour,
        capacity,
        replicas,
        gpus,
        cost,
        cost / million_per_hour(traffic.output_tokens) if meets else math.nan,
        cost / million_per_hour(traffic.prompt_tokens + traffic.output_tokens) if meets else math.nan,
        traffic.rate_rps / (replicas * capacity) if meets else math.nan,
        ttft,
        itl,
        meets,
        note,
    )


def plan(traffic: Traffic, slo: Slo, candidates: list[Candidate], max_replicas: int = 512) -> list[PlanRow]:
    """One row per candidate: those that meet the SLO cheapest first (fewer GPUs break a tie), then the rest."""
    rows = [plan_one(traffic, slo, c, max_replicas) for c in candidates]
    return sorted(rows, key=lambda r: (not r.meets_slo, r.cost_per_hour if r.meets_slo else 0.0, r.gpus, r.profile))


def cost_latency_curve(traffic: Traffic, slo: Slo, candidate: Candidate, first: int, extra: int = 4) -> list[dict]:
    """Cost against latency for `first` .. `first + extra` replicas: what each replica more buys."""
    points = []
    for replicas in range(max(1, first), max(1, first) + extra + 1):
        ttft, itl = candidate.atlas.latency(
            traffic.prompt_tokens, traffic.output_tokens, traffic.rate_rps / replicas, *slo, replicas=replicas
        )
        points.append(
            {
                "profile": candidate.profile,
                "replicas": replicas,
                "cost_per_hour": replicas * candidate.gpus_per_replica * candidate.price_per_gpu_hour,
                "ttft_p95_s": ttft,
                "itl_p50_s": itl,
            }
        )
    return points
