"""Reports of simulation runs: the comparison table, and the results folder (parquet, JSON, PNG plots)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from autoscaler.sim.results import SimResult

TABLE_COLUMNS = [
    ("policy", "policy", "{}"),
    ("slo_attainment", "SLO att.", "{:.2%}"),
    ("goodput_rps", "goodput/s", "{:.2f}"),
    ("ttft_p95_s", "TTFT p95", "{:.3f}"),
    ("itl_p95_s", "ITL p95", "{:.4f}"),
    ("failed", "failed", "{}"),
    ("gpu_hours", "GPU-h", "{:.2f}"),
    ("cost_usd", "cost $", "{:.2f}"),
    ("cost_per_million_output_tokens", "$/1M out", "{:.2f}"),
    ("scale_actions", "actions", "{}"),
    ("max_replicas", "max", "{}"),
    ("mean_replicas", "mean", "{:.2f}"),
]


def _cell(value, fmt: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return fmt.format(value)


def table(summaries: list[dict], markdown: bool = False) -> str:
    headers = [h for _, h, _ in TABLE_COLUMNS]
    rows = [[_cell(s.get(k, float("nan")), f) for k, _, f in TABLE_COLUMNS] for s in summaries]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(headers)] + [fmt(r) for r in rows])


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save(results: list[SimResult], out: Path) -> list[Path]:
    """Per policy: records and timeline as parquet; for all: summary.json and the two plots."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results:
        slug = _slug(result.summary["policy"])
        for name, frame in (("records", result.records), ("timeline", result.timeline)):
            path = out / f"{slug}.{name}.parquet"
            tmp = path.with_suffix(".tmp")
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, path)
            written.append(path)
    summary_path = out / "summary.json"
    _write_atomic(summary_path, json.dumps([r.summary for r in results], indent=2))
    written += [
        summary_path,
        plot_timelines(results, out / "replicas_over_time.png"),
        plot_frontier(results, out / "attainment_vs_gpu_hours.png"),
    ]
    return written


def plot_timelines(results: list[SimResult], path: Path) -> Path:
    fig, axes = plt.subplots(len(results) + 1, 1, figsize=(11, 2.2 * (len(results) + 1)), sharex=True)
    load = results[0].timeline
    hours = load["time_s"] / 3600.0
    axes[0].plot(hours, load["arrival_rate"], color="black", lw=0.8)
    axes[0].set_ylabel("arrivals/s")
    axes[0].set_title("load and replicas over time")
    for ax, result in zip(axes[1:], results):
        t = result.timeline
        h = t["time_s"] / 3600.0
        ax.step(h, t["ready"], where="post", label="ready")
        ax.step(h, t["ready"] + t["starting"], where="post", label="ready + starting", alpha=0.6)
        ax.set_ylabel("replicas")
        ax.set_title(
            f"{result.summary['policy']}: {result.summary['slo_attainment']:.2%} within SLO, "
            f"{result.summary['gpu_hours']:.1f} GPU-h",
            fontsize=9,
        )
    axes[1].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("hours")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_frontier(results: list[SimResult], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    for result in results:
        s = result.summary
        ax.scatter(s["gpu_hours"], 100 * s["slo_attainment"])
        ax.annotate(
            s["policy"],
            (s["gpu_hours"], 100 * s["slo_attainment"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("GPU-hours")
    ax.set_ylabel("SLO attainment (%)")
    ax.set_title("SLO attainment against GPU-hours (up and left is better)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
