"""Simulation outputs: per-request records, the timeline, and the summary with the keys of the issue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from autoscaler.sim.request.simulator import Simulator


@dataclass
class SimResult:
    summary: dict
    records: pd.DataFrame
    timeline: pd.DataFrame
    decisions: list


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def count_scale_actions(initial_replicas: int, decisions: list, since: float = 0.0) -> int:
    """Decisions at or after `since` that changed the replica count asked for (both simulation modes)."""
    desired = [d.desired for _, d in decisions]
    times = [t for t, _ in decisions]
    return sum(1 for t, a, b in zip(times, [initial_replicas] + desired, desired) if a != b and t >= since)


def request_frame(sim: Simulator) -> pd.DataFrame:
    r = sim.records
    output = r.output.astype(np.float64)
    ttft = r.first - r.arrival
    itl = np.where(output > 1, (r.finish - r.first) / np.maximum(output - 1, 1), 0.0)
    return pd.DataFrame(
        {
            "arrival_s": r.arrival,
            "replica": r.replica,
            "prompt_tokens": r.prompt,
            "output_tokens": r.output,
            "queue_s": r.scheduled - r.arrival,
            "ttft_s": ttft,
            "mean_itl_s": itl,
            "e2e_s": r.finish - r.arrival,
            "ok": r.ok,
        }
    )


def attainment_mask(frame: pd.DataFrame, slo_ttft_s: float, slo_itl_s: float) -> np.ndarray:
    """A request meets the SLO when it succeeded with TTFT and mean ITL within target; failures are misses."""
    return (frame["ok"] & (frame["ttft_s"] <= slo_ttft_s) & (frame["mean_itl_s"] <= slo_itl_s)).to_numpy()


def summarize(sim: Simulator, end: float) -> SimResult:
    """The summary over [judge_from_s, end): requests that arrived then, replicas paid then (records and timeline whole)."""
    cfg = sim.config
    since = cfg.judge_from_s
    frame = request_frame(sim)
    judged = frame[frame["arrival_s"] >= since] if since > 0 else frame
    met = attainment_mask(judged, cfg.slo_ttft_s, cfg.slo_itl_s)
    ok = judged[judged["ok"]]
    duration = max(end - since, 1e-9)
    gpu_hours = sum(r.gpu_seconds(end, since) for r in sim.replicas) / 3600.0
    cost = gpu_hours * cfg.price_per_gpu_hour
    out_tokens = float(ok["output_tokens"].sum())
    timeline = pd.DataFrame(sim.timeline)
    window = timeline[timeline["time_s"] >= since] if len(timeline) and since > 0 else timeline
    paid_now = (
        (window["ready"] + window["starting"] + window["draining"])
        if len(window)
        else pd.Series([cfg.initial_replicas])
    )
    summary = {
        "policy": sim.policy.name,
        "requests": len(judged),
        "failed": int((~judged["ok"]).sum()),
        "slo_attainment": float(met.mean()) if len(judged) else float("nan"),
        "goodput_rps": float(met.sum() / duration),
        "ttft_p50_s": _pct(ok["ttft_s"].to_numpy(), 50),
        "ttft_p95_s": _pct(ok["ttft_s"].to_numpy(), 95),
        "ttft_p99_s": _pct(ok["ttft_s"].to_numpy(), 99),
        "itl_p95_s": _pct(ok["mean_itl_s"].to_numpy(), 95),
        "gpu_hours": gpu_hours,
        "cost_usd": cost,
        "cost_per_million_output_tokens": cost / (out_tokens / 1e6) if out_tokens else float("nan"),
        "scale_actions": count_scale_actions(cfg.initial_replicas, sim.decisions, since),
        "max_replicas": int(max(paid_now.max(), cfg.initial_replicas)),
        "mean_replicas": gpu_hours * 3600.0 / duration / cfg.profile.gpus,
        "duration_s": duration,
        "output_tokens": out_tokens,
        "slo_ttft_s": cfg.slo_ttft_s,
        "slo_itl_s": cfg.slo_itl_s,
        "cold_start_s": cfg.cold_start_s,
        "profile": cfg.profile.name,
        "judged_from_s": since,
    }
    return SimResult(summary, frame, timeline, sim.decisions)
