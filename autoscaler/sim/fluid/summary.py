"""A fluid run's summary: its counts, replica-seconds paid and latency quantiles from fine histograms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autoscaler.sim.results import count_scale_actions
from serving.contracts.vllm_metrics import TTFT_BUCKETS

if TYPE_CHECKING:
    from autoscaler.sim.fluid.steps import FluidRun

FINE = np.geomspace(1e-4, 1e4, 801)  # bucket upper bounds, about 2.3% apart
TTFT_BOUNDS = np.asarray(TTFT_BUCKETS)


def fine_histogram(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted counts of `values` in the FINE buckets (the last is above them): what the summary's quantiles read."""
    return np.bincount(np.searchsorted(FINE, values), weights=weights, minlength=len(FINE) + 1)


def ttft_histogram(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted counts of TTFT `values` in vLLM's buckets (the last is +Inf): what a scrape reads."""
    return np.bincount(np.searchsorted(TTFT_BOUNDS, values), weights=weights, minlength=len(TTFT_BOUNDS) + 1)


def fluid_summary(
    run: FluidRun,
    arrived: float,
    failed: float,
    met: float,
    ttft_hist: np.ndarray,
    itl_hist: np.ndarray,
    out_tokens: float,
    frame: pd.DataFrame,
) -> dict:
    """The summary of a fluid run over [judge_from_s, end): its counts, replica-seconds paid and fine histograms."""
    cfg, policy, paid_s, end, decisions = run.config, run.policy_name, run.paid_s, run.end, run.decisions
    since = min(cfg.judge_from_s, end)
    span = max(end - since, 1e-9)
    gpu_hours = paid_s * cfg.profile.gpus / 3600.0
    cost = gpu_hours * cfg.price_per_gpu_hour
    window = frame[frame["time_s"] >= since] if len(frame) and since > 0 else frame
    return {
        "policy": policy,
        "requests": int(round(arrived)),
        "failed": int(round(failed)),
        "slo_attainment": met / arrived if arrived else float("nan"),
        "goodput_rps": met / span,
        "ttft_p50_s": hist_quantile(ttft_hist, 0.50),
        "ttft_p95_s": hist_quantile(ttft_hist, 0.95),
        "ttft_p99_s": hist_quantile(ttft_hist, 0.99),
        "itl_p95_s": hist_quantile(itl_hist, 0.95),
        "gpu_hours": gpu_hours,
        "cost_usd": cost,
        "cost_per_million_output_tokens": cost / (out_tokens / 1e6) if out_tokens else float("nan"),
        "scale_actions": count_scale_actions(cfg.initial_replicas, decisions, since),
        "max_replicas": int((window["ready"] + window["starting"] + window["draining"]).max())
        if len(window)
        else cfg.initial_replicas,
        "mean_replicas": gpu_hours * 3600.0 / span / cfg.profile.gpus,
        "duration_s": span,
        "output_tokens": out_tokens,
        "slo_ttft_s": cfg.slo_ttft_s,
        "slo_itl_s": cfg.slo_itl_s,
        "cold_start_s": cfg.cold_start_s,
        "profile": cfg.profile.name,
        "mode": "fluid",
        "judged_from_s": since,
    }


def hist_quantile(hist: np.ndarray, q: float) -> float:
    """Quantile from a fine histogram over FINE (the bucket's upper bound; within ~2.3%)."""
    total = hist.sum()
    if total <= 0:
        return float("nan")
    i = int(np.searchsorted(np.cumsum(hist), q * total))
    return float(FINE[min(i, len(FINE) - 1)])
