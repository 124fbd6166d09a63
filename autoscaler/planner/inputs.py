"""The planner's inputs from disk: candidate profiles with their atlases and GPU prices, and a trace's peak rate
and length mix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from autoscaler.capacity.atlas_build import build_atlas
from autoscaler.capacity.atlas_store import load_atlas
from autoscaler.planner.core import Candidate, Traffic
from loadgen.workloads.load import load_workload
from loadgen.workloads.workload import Workload
from serving.profiles import gpu_price_per_hour, list_profiles, load_profile

PEAK_WINDOW_S = 300.0  # a trace's peak rate: its busiest five minutes (a minute's count is mostly noise)


def candidates(
    names: list[str] | None,
    cache_dir: Path,
    prices: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Every shipped profile, or the named ones (names or YAML paths); a price per GPU type overrides the shipped
    on-demand price. A profile without a shipped atlas has one measured (minutes) and cached."""

    def build(profile, digest):
        if progress:
            progress(f"{profile.name}: no shipped capacity atlas; measuring one on the engine (minutes, then cached)")
        return build_atlas(profile, profile.name, digest, progress=progress)

    out = []
    for name in names or list_profiles():
        profile = load_profile(name)
        atlas, _ = load_atlas(profile, cache_dir, build)
        price = (prices or {}).get(profile.gpu.name, None)
        out.append(
            Candidate(
                profile.name,
                profile.gpu.name,
                profile.gpus,
                gpu_price_per_hour(profile.gpu.name) if price is None else price,
                atlas,
            )
        )
    return out


def peak_rate(arrival_s: np.ndarray, window_s: float = PEAK_WINDOW_S) -> float:
    """Requests per second in the busiest window of `window_s` that starts at an arrival (the whole trace's mean
    rate when it is shorter than one window)."""
    span = float(arrival_s[-1] - arrival_s[0]) if len(arrival_s) > 1 else 0.0
    if span < window_s:
        return len(arrival_s) / max(span, 1.0)
    ends = np.searchsorted(arrival_s, arrival_s + window_s, side="left")
    return float((ends - np.arange(len(arrival_s))).max() / window_s)


def traffic_of(workload: Workload) -> Traffic:
    return Traffic(
        peak_rate(np.asarray(workload.arrival_s, dtype=np.float64)),
        float(np.mean(workload.prompt_tokens)),
        float(np.mean(workload.output_tokens)),
    )


def traffic_from_trace(path: str) -> tuple[Traffic, Workload]:
    """A trace in any format `headroom simulate` reads: its peak rate and mean lengths, and the trace itself."""
    workload = load_workload(path)
    return traffic_of(workload), workload
