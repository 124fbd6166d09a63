"""PNG plots of a campaign: latency percentiles and throughput over time, from the per-request records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plot_campaign(records: pd.DataFrame, path: Path, title: str, bin_s: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = records[records["ok"].astype(bool)]
    finish = (records["sent_s"] + records["e2e_s"]).to_numpy(dtype=np.float64)
    span = float(np.nanmax(finish)) if len(records) else 1.0
    bin_s = bin_s or max(1.0, span / 60)
    fig, (latency, throughput) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    if len(ok):
        bins = (ok["sent_s"] // bin_s).astype(int)
        for column, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT")):
            grouped = ok.groupby(bins)[column]
            for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
                series = grouped.quantile(q) * 1000.0
                latency.plot(series.index * bin_s, series.values, style, label=f"{label} p{int(q * 100)}")
    latency.set_yscale("log")
    latency.set_ylabel("ms")
    latency.legend(fontsize=7, ncol=2)
    latency.set_title(title)
    sent = (
        np.bincount((records["sent_s"].to_numpy(dtype=np.float64) // bin_s).astype(int)) / bin_s
        if len(records)
        else np.zeros(1)
    )
    done_ok = finish[records["ok"].astype(bool).to_numpy()] if len(records) else np.zeros(0)
    answered = (
        np.bincount((done_ok // bin_s).astype(int), minlength=len(sent)) / bin_s
        if len(done_ok)
        else np.zeros(len(sent))
    )
    tokens = (
        np.bincount(
            (done_ok // bin_s).astype(int), weights=ok["output_tokens"].to_numpy(dtype=np.float64), minlength=len(sent)
        )
        / bin_s
        if len(done_ok)
        else np.zeros(len(sent))
    )
    throughput.plot(np.arange(len(sent)) * bin_s, sent, label="sent req/s")
    throughput.plot(np.arange(len(answered)) * bin_s, answered, label="answered req/s")
    throughput.set_ylabel("requests/s")
    twin = throughput.twinx()
    twin.plot(np.arange(len(tokens)) * bin_s, tokens, color="tab:green", alpha=0.6, label="output tokens/s")
    twin.set_ylabel("output tokens/s")
    throughput.set_xlabel("seconds from start")
    throughput.legend(loc="upper left", fontsize=7)
    twin.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
