"""Why Knative's KPA costs less in fluid mode on Azure conv: the concurrency it reads under a fixed fleet, both modes,
against how often it panics once it scales (each panic starts replicas that are paid for, then cancelled unready)."""

from __future__ import annotations

import numpy as np

from autoscaler.policy.base import Decision
from autoscaler.sim.run import SimulateArgs, run_one
from bench.simulate import CONV

FIXED_REPLICAS = 4
KPA = "kpa:16"


_SEEN: list[float] = []  # what the probe was shown, tick by tick (the run happens in this process)


class FixedFleetProbe:
    """static:4 that keeps the concurrency each 2 s tick was shown (the KPA's input); loaded by its spec."""

    name = "probe"
    interval_s = 2.0

    def initial_state(self):
        return None

    def decide(self, snapshot, state):
        _SEEN.append(snapshot.extra["in_flight_now"])
        return Decision(FIXED_REPLICAS, ("probe",)), state


def _args(mode: str, **extra) -> SimulateArgs:
    return SimulateArgs(trace=CONV, policies=[], rate_scale=4.0, end_s=1800.0, max_replicas=20, mode=mode, **extra)


def _seen_concurrency(mode: str) -> np.ndarray:
    _SEEN.clear()
    run_one(_args(mode, initial_replicas=FIXED_REPLICAS), "bench.kpa_gap:FixedFleetProbe")
    return np.array(_SEEN)


def kpa_gap_section() -> str:
    rows = []
    for mode in ("request", "fluid"):
        seen = _seen_concurrency(mode)
        result = run_one(_args(mode), KPA)
        panics = sum(1 for _, d in result.decisions if d.reasons and d.reasons[0].startswith("panic"))
        rows.append(f"| {mode} | {seen.mean():.1f} | {np.quantile(seen, 0.9):.0f} | {panics} of {len(result.decisions)} | "
                    f"{result.summary['mean_replicas']:.2f} | {result.summary['gpu_hours']:.2f} |")
    return "\n".join([
        "#### Knative's KPA on Azure conv x4, first 30 min: fluid against request-level", "",
        f"Concurrency the KPA reads each 2 s tick under a fixed fleet of {FIXED_REPLICAS} replicas, then {KPA} itself: "
        "the ticks it spends in panic mode, its mean replicas (starting ones included) and GPU-hours.", "",
        f"| mode | concurrency seen at {FIXED_REPLICAS} replicas, mean | 90th percentile | {KPA}: panic ticks | mean replicas | GPU-h |",
        "|---|---|---|---|---|---|", *rows,
    ])
