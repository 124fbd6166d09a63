"""`headroom plan`: the capacity planner from the command line: a table, or JSON for scripts and CI."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the planner's modules load numpy and pandas: only when the command runs, not with the parser
    from autoscaler.planner.core import PlanRow, Traffic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, help="peak requests per second (default with --trace: its busiest 5 min)")
    parser.add_argument("--prompt-tokens", type=float, help="mean prompt length (default with --trace: its mean)")
    parser.add_argument("--output-tokens", type=float, help="mean output length (default with --trace: its mean)")
    parser.add_argument("--trace", help="plan for a trace (Azure .csv, JSONL replay file or ServeGen folder)")
    parser.add_argument("--slo-ttft", type=float, default=1.0, metavar="S")
    parser.add_argument("--slo-itl", type=float, default=0.05, metavar="S", help="mean inter-token latency target")
    parser.add_argument("--goal", type=float, default=0.99, help="share of requests within both targets")
    parser.add_argument("--profiles", help="comma-separated profile names or YAML files (default: every shipped one)")
    parser.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="GPU=USD",
        help="USD per GPU-hour for a GPU type, overriding the shipped on-demand price (repeatable)",
    )
    parser.add_argument("--max-replicas", type=int, default=512)
    parser.add_argument("--json", action="store_true")


def parse_prices(items: list[str]) -> dict[str, float]:
    prices = {}
    for item in items:
        gpu, _, usd = item.partition("=")
        try:
            value = float(usd)
        except ValueError:
            value = math.nan
        if not gpu or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"--price {item!r}: expected GPU=USD_PER_GPU_HOUR with a number >= 0, like H100=2.5")
        prices[gpu] = value
    return prices


def traffic_from_args(args) -> Traffic:
    from autoscaler.planner.core import Traffic
    from autoscaler.planner.inputs import traffic_from_trace

    given = {"rate_rps": args.rate, "prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens}
    if args.trace:
        from_trace, _ = traffic_from_trace(args.trace)
        given = {k: v if v is not None else getattr(from_trace, k) for k, v in given.items()}
    missing = [
        flag
        for flag, key in (
            ("--rate", "rate_rps"),
            ("--prompt-tokens", "prompt_tokens"),
            ("--output-tokens", "output_tokens"),
        )
        if given[key] is None
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or give --trace to read them from a trace)")
    return Traffic(**given)


def json_safe(row: PlanRow) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.as_dict().items()}


def run(args) -> int:
    from autoscaler.planner.core import Slo, plan
    from autoscaler.planner.inputs import candidates
    from serving.common.disk_cache import cache_folder

    traffic = traffic_from_args(args)
    slo = Slo(args.slo_ttft, args.slo_itl, args.goal)
    if args.max_replicas < 1:
        raise ValueError(f"--max-replicas must be at least 1, got {args.max_replicas}")
    names = [n for n in (args.profiles or "").split(",") if n]
    log = lambda line: print(line, file=sys.stderr, flush=True)
    rows = plan(
        traffic,
        slo,
        candidates(names, cache_folder(os.environ) / "atlas", parse_prices(args.price), log),
        args.max_replicas,
    )
    if args.json:
        print(json.dumps([json_safe(r) for r in rows], indent=2))
        return 0
    print(
        f"{traffic.rate_rps:.4g} req/s, prompts {traffic.prompt_tokens:.0f} and outputs {traffic.output_tokens:.0f} "
        f"tokens on average; SLO: {slo.goal:.2%} of requests within TTFT {slo.ttft_s:g} s and mean ITL {slo.itl_s:g} s"
    )
    print_rows(rows)
    best = next((r for r in rows if r.meets_slo), None)
    print(
        f"cheapest: {best.profile}, {best.replicas} replica(s), {best.gpus} GPU(s), ${best.cost_per_hour:.2f}/h"
        if best
        else "no candidate profile meets the SLO for this traffic"
    )
    if best and best.why_not_fewer:
        print(f"one fewer: {best.why_not_fewer}")
    return 0


def print_rows(rows: list[PlanRow]) -> None:
    table = [
        {
            "profile": r.profile,
            "replicas": r.replicas,
            "gpus": r.gpus,
            "$/h": f"{r.cost_per_hour:.2f}",
            "$/1M out": _money(r.cost_per_million_output_tokens),
            "$/1M tok": _money(r.cost_per_million_tokens),
            "req/s/replica": f"{r.replica_capacity_rps:.3g}",
            "load": _share(r.load_per_replica),
            "TTFT p95": _seconds(r.ttft_p95_s),
            "ITL p50": _seconds(r.itl_p50_s),
            "meets": "yes" if r.meets_slo else f"no: {r.note}",
        }
        for r in rows
    ]
    widths = {c: max(len(c), *(len(str(t[c])) for t in table)) for c in table[0]}
    print("  ".join(c.ljust(widths[c]) for c in widths))
    for t in table:
        print("  ".join(str(t[c]).ljust(widths[c]) for c in widths))


def _money(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "-"


def _share(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else "-"


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if math.isfinite(value) else "-"
