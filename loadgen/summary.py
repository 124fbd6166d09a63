"""A campaign's summary with the field names of `vllm bench serve`'s result file where the meaning matches:
counts, throughputs, goodput under the campaign's SLO, and mean/median/std/p90/p95/p99 of TTFT, TPOT, ITL and
end-to-end latency in milliseconds; plus what Headroom adds (generator lag, partial-run marks)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

METRICS = {"ttft": "ttft_s", "tpot": "tpot_s", "e2el": "e2e_s"}


def _stats(prefix: str, seconds: np.ndarray) -> dict:
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    values = values[~np.isnan(values)]
    if not len(values):
        return {f"{k}_{prefix}_ms": math.nan for k in ("mean", "median", "std", "p90", "p95", "p99")}
    return {
        f"mean_{prefix}_ms": float(values.mean()),
        f"median_{prefix}_ms": float(np.median(values)),
        f"std_{prefix}_ms": float(values.std()),
        f"p90_{prefix}_ms": float(np.percentile(values, 90)),
        f"p95_{prefix}_ms": float(np.percentile(values, 95)),
        f"p99_{prefix}_ms": float(np.percentile(values, 99)),
    }


def good_requests(records: pd.DataFrame, slo_ttft_s: float, slo_tpot_s: float) -> np.ndarray:
    """Requests that succeeded within the TTFT and TPOT targets (a one-token answer has no TPOT to miss)."""
    tpot = records["tpot_s"].astype(float)
    return (
        records["ok"].astype(bool)
        & (records["ttft_s"].astype(float) <= slo_ttft_s)
        & (tpot.isna() | (tpot <= slo_tpot_s))
    ).to_numpy()


def summarize(
    records: pd.DataFrame, planned: int, slo_ttft_s: float, slo_tpot_s: float, target_rate: float | None = None
) -> dict:
    ok = records[records["ok"].astype(bool)]
    sent_end = (records["sent_s"] + records["e2e_s"]).max() if len(records) else 0.0
    duration = float(sent_end) if len(records) and sent_end > 0 else math.nan
    itls = np.concatenate([np.asarray(x, dtype=np.float64) for x in ok["itls_s"] if len(x)]) if len(ok) else np.zeros(0)
    good = good_requests(records, slo_ttft_s, slo_tpot_s) if len(records) else np.zeros(0, dtype=bool)
    summary = {
        "duration": duration,
        "completed": len(ok),
        "failed": int(len(records) - len(ok)),
        "planned": int(planned),
        "unanswered": int(planned - len(records)),
        "total_input_tokens": int(ok["prompt_tokens"].sum()),
        "total_output_tokens": int(ok["output_tokens"].sum()),
        "request_rate": target_rate if target_rate is not None else math.nan,
        "request_throughput": len(ok) / duration if not math.isnan(duration) else math.nan,
        "request_goodput": float(good.sum()) / duration if not math.isnan(duration) else math.nan,
        "output_throughput": float(ok["output_tokens"].sum()) / duration if not math.isnan(duration) else math.nan,
        "total_token_throughput": float(ok["prompt_tokens"].sum() + ok["output_tokens"].sum()) / duration
        if not math.isnan(duration)
        else math.nan,
        "slo_attainment": float(good.mean()) if len(good) else math.nan,
        "goodput_slo": {"ttft_ms": slo_ttft_s * 1000.0, "tpot_ms": slo_tpot_s * 1000.0},
    }
    for prefix, column in METRICS.items():
        summary.update(_stats(prefix, ok[column].to_numpy()))
    summary.update(_stats("itl", itls))
    lag = records["lag_s"].to_numpy(dtype=np.float64) if len(records) else np.zeros(0)
    summary["generator_lag_p99_ms"] = float(np.percentile(lag, 99) * 1000.0) if len(lag) else math.nan
    summary["errors"] = records.loc[~records["ok"].astype(bool), "error"].value_counts().head(10).to_dict()
    return summary
