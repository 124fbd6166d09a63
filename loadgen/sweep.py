"""`headroom loadtest sweep`: the highest request rate that still meets the campaign's SLO for its length mix,
found the way guidellm's sweep and vLLM's SLA sweep do (constant-rate probes: doubling, then bisection), and
written as a capacity file that the autoscaler's capacity model reads."""

from __future__ import annotations

import math
from pathlib import Path

import yaml
from pydantic import BaseModel

from loadgen.campaign import campaign_workload, load_campaign
from serving.common.strict import Strict


class Probe(BaseModel):
    rate: float
    slo_attainment: float
    request_throughput: float
    output_throughput: float
    p99_ttft_ms: float
    p99_tpot_ms: float
    failed: int
    partial: bool


class CapacityFile(Strict):
    """Requests/s one target (one replica, or whatever the URL fronts) carries within the SLO for a length mix."""

    kind: str = "headroom-capacity/v1"
    model: str
    target: str
    replicas_behind_target: int = 1
    slo_ttft_s: float
    slo_tpot_s: float
    attainment_goal: float
    mean_prompt_tokens: float
    mean_output_tokens: float
    capacity_rps: float  # the highest probed rate meeting the goal
    probes: list[Probe]


def load_capacity_file(path: str | Path) -> CapacityFile:
    return CapacityFile.model_validate(yaml.safe_load(Path(path).read_text()))


def sweep_capacity(
    campaign_path: str,
    out: Path,
    goal: float = 0.99,
    probe_s: float = 60.0,
    start_rate: float = 1.0,
    max_rate: float = 1000.0,
    tolerance: float = 0.05,
    workers: int = 0,
    replicas: int = 1,
    quiet: bool = True,
    progress=print,
) -> CapacityFile:
    from loadgen.run import run_campaign

    base = load_campaign(campaign_path)
    probes: dict[float, Probe] = {}

    def probe(rate: float) -> Probe:
        if rate not in probes:
            overrides = {"shape": {"kind": "constant", "rate": rate}, "duration_s": probe_s, "max_requests": None}
            summary, code = run_campaign(campaign_path, out / f"rate-{rate:.4g}", workers, quiet, overrides)
            if code == 2:
                raise RuntimeError(f"sweep stopped: {summary['partial_reason']}")
            probes[rate] = Probe(
                rate=rate,
                slo_attainment=_num(summary["slo_attainment"]),
                request_throughput=_num(summary["request_throughput"]),
                output_throughput=_num(summary["output_throughput"]),
                p99_ttft_ms=_num(summary["p99_ttft_ms"]),
                p99_tpot_ms=_num(summary["p99_tpot_ms"]),
                failed=summary["failed"],
                partial=summary["partial"],
            )
            p = probes[rate]
            progress(f"sweep: {rate:8.3f} req/s -> attainment {p.slo_attainment:.2%}, p99 TTFT {p.p99_ttft_ms:.0f} ms")
        return probes[rate]

    meets = lambda rate: probe(rate).slo_attainment >= goal and not probe(rate).partial
    lo, hi = 0.0, start_rate
    while meets(hi):
        lo, hi = hi, hi * 2
        if hi > max_rate:
            raise RuntimeError(f"sweep stopped: the SLO is still met at {lo:g} req/s (raise --max-rate)")
    while lo == 0.0 and hi > start_rate / 64:  # even the first probe fails: look lower
        hi /= 2
        if meets(hi):
            lo, hi = hi, hi * 2
            break
    if lo > 0:
        while hi - lo > tolerance * lo:
            mid = (lo + hi) / 2
            if meets(mid):
                lo = mid
            else:
                hi = mid
    workload = campaign_workload(base.model_copy(update={"max_requests": 2000}))
    result = CapacityFile(
        model=base.model,
        target=base.base_url,
        replicas_behind_target=replicas,
        slo_ttft_s=base.slo.ttft_s,
        slo_tpot_s=base.slo.tpot_s,
        attainment_goal=goal,
        mean_prompt_tokens=float(workload.prompt_tokens.mean()),
        mean_output_tokens=float(workload.output_tokens.mean()),
        capacity_rps=lo / replicas,
        probes=sorted(probes.values(), key=lambda p: p.rate),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "capacity.yaml").write_text(yaml.safe_dump(result.model_dump(), sort_keys=False))
    return result


def _num(value) -> float:
    return float(value) if value is not None else math.nan
