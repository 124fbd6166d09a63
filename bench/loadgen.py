"""Load-campaign benchmarks: the simulator against the live local stack on the same slice of a shared trace."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import yaml

from bench.simulate import CONV, TRACES

SLICE_S = 600.0


def _live(campaign_path: Path, out: Path, replicas: int) -> dict:
    from headroom.stack import LocalStack, StackConfig
    from loadgen.run import run_campaign

    async def main() -> dict:
        stack = LocalStack(
            StackConfig(replicas=replicas, cold_start_s=0.0, gateway_port=0, prometheus_port=0, run_dir=out / "run")
        )
        await stack.start()
        try:
            overrides = {"target": stack.gateway_url, "model": stack.profile.model.name}
            summary, _ = await asyncio.to_thread(run_campaign, str(campaign_path), out / "campaign", 0, True, overrides)
            return summary
        finally:
            await stack.stop()

    return asyncio.run(main())


def crosscheck_section(replicas: int = 2, rate_scale: float = 2.0) -> str:
    """A 10-minute slice of Azure conv through `headroom up`'s fleet (wall clock, real processes) and through
    `headroom simulate` (virtual time): throughput within 5% and p95 TTFT within 20% is the goal."""
    from autoscaler.sim.args import SimulateArgs
    from autoscaler.sim.run import run_one
    from bench import CACHE

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        campaign = {
            "name": "conv-slice",
            "target": "http://127.0.0.1:8080",
            "model": "m",
            "api": "completions",
            "shape": {"kind": "trace", "path": CONV, "start_s": 0.0, "end_s": SLICE_S, "rate_scale": rate_scale},
            "slo": {"ttft_s": 1.0, "tpot_s": 0.05},
        }
        path = out / "campaign.yaml"
        path.write_text(yaml.safe_dump(campaign))
        live = _live(path, out, replicas)
    sim = run_one(
        SimulateArgs(
            cache_dir=CACHE,
            trace=CONV,
            policies=[f"static:{replicas}"],
            end_s=SLICE_S,
            rate_scale=rate_scale,
            initial_replicas=replicas,
            cold_start_s=0.0,
        ),
        f"static:{replicas}",
    ).summary
    sim_throughput = (sim["requests"] - sim["failed"]) / sim["duration_s"]
    rows = [
        ("request throughput (req/s)", live["request_throughput"], sim_throughput, "within 5%"),
        ("output throughput (tok/s)", live["output_throughput"], sim["output_tokens"] / sim["duration_s"], "within 5%"),
        ("p95 TTFT (s)", live["p95_ttft_ms"] / 1000, sim["ttft_p95_s"], "within 20%"),
        ("p50 TTFT (s)", live["median_ttft_ms"] / 1000, sim["ttft_p50_s"], "-"),
    ]
    lines = ["| metric | live stack (campaign) | simulator | difference | goal |", "|---|---|---|---|---|"]
    for name, a, b, goal in rows:
        lines.append(f"| {name} | {a:.4g} | {b:.4g} | {100 * (b / a - 1):+.1f}% | {goal} |")
    rel = Path(CONV).relative_to(TRACES.parent.parent.parent)
    return "\n".join(
        [
            "## Load campaign against the simulator",
            "",
            (
                f"The first {SLICE_S / 60:.0f} minutes of Azure conv at {rate_scale:g}x, replayed by a campaign through `headroom up`'s "
                f"gateway to {replicas} emulated replicas (real processes, wall clock) and by `headroom simulate --policy "
                f"static:{replicas}` (virtual time), Llama-3.1-8B on H100 in both. Campaign: a `trace` shape on `../{rel}`."
            ),
            "",
            *lines,
            "",
            (
                f"Campaign: {live['completed']} completed, {live['failed']} failed of {live['planned']}; generator lag p99 "
                f"{live['generator_lag_p99_ms']:.1f} ms."
            ),
        ]
    )
