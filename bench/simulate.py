"""Simulator benchmarks: speed on one core, fluid against request-level, and tuned baseline tables."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from autoscaler.sim.report import table
from autoscaler.sim.run import SimulateArgs, fluid_run, run_one, sim_config, _cached_table
from autoscaler.sim.policies import PolicyContext, parse_policy
from autoscaler.sim.sweep import sweep

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces"
CONV = str(TRACES / "AzureLLMInferenceTrace_conv.csv")
CODE = str(TRACES / "AzureLLMInferenceTrace_code.csv")
MLARGE = str(TRACES / "servegen" / "m-large")
SETTING = ("Llama-3.1-8B on H100 (profile llama-3.1-8b-h100, on-demand $12.29 per GPU-hour), SLO: TTFT <= 1 s and "
           "mean ITL <= 50 ms, cold start 90 s, Prometheus scrape 15 s with 60 s rate windows")


def _timed(fn):
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def speed_section() -> str:
    rows = []
    args = SimulateArgs(trace=CONV, policies=["hpa:gpu_util=70"])
    result, cpu = _timed(lambda: run_one(args, "hpa:gpu_util=70"))
    rows.append(("request-level, Azure conv 1 h (19,366 requests)", "hpa:gpu_util=70", cpu, "<= 10 s", result.summary))
    fluid = SimulateArgs(trace=MLARGE, policies=[], mode="fluid", lengths_from=CONV, max_replicas=200, initial_replicas=20)
    config = sim_config(fluid)
    _, table_cpu = _timed(lambda: _cached_table(fluid, config))
    for spec in ("static:30", "hpa:running=64", "keda"):
        policy = parse_policy(spec, PolicyContext(max_replicas=200))
        result, cpu = _timed(lambda: fluid_run(fluid, config, policy, None))
        rows.append(("fluid, ServeGen m-large 14 days (237 M requests)", spec, cpu, "<= 60 s", result.summary))
    lines = ["| run | policy | CPU seconds | goal | attainment | GPU-hours |", "|---|---|---|---|---|---|"]
    for what, spec, cpu, goal, s in rows:
        lines.append(f"| {what} | {spec} | {cpu:.1f} | {goal} | {s['slo_attainment']:.2%} | {s['gpu_hours']:,.1f} |")
    return "\n".join([
        "### Speed (one core)",
        "",
        "CPU time of one process (`time.process_time`). The fluid runs use a load table measured once on the engine "
        f"for the length mix and cached on disk; measuring it took {table_cpu:.1f} CPU-s in this run (0 when cached).",
        "",
        *lines,
    ])


CROSS_CASES = [  # static ones, every reactive baseline at its setting tuned on Azure conv, and the defaults of KEDA and the HPA
    (CONV, 4.0, "static:3"), (CONV, 4.0, "hpa:gpu_util=70"), (CONV, 4.0, "hpa:running=32"), (CONV, 4.0, "kpa:16"),
    (CONV, 4.0, "keda:5"), (CONV, 4.0, "hpa:waiting=5"), (CONV, 4.0, "hpa:gpu_util=80"),
    (CODE, 4.0, "static:2"), (CODE, 4.0, "static:4"), (CODE, 4.0, "hpa:gpu_util=70"), (CODE, 4.0, "hpa:running=32"),
    (CODE, 4.0, "kpa:16"), (CODE, 4.0, "keda:5"),
]


def crosscheck_section() -> str:
    lines = ["| trace | policy | request-level attainment | fluid attainment | difference (points) | request GPU-h | fluid GPU-h | difference |",
             "|---|---|---|---|---|---|---|---|"]
    for trace, scale, spec in CROSS_CASES:
        args = SimulateArgs(trace=trace, policies=[spec], rate_scale=scale, end_s=1800.0, max_replicas=20)
        a = run_one(args, spec).summary
        b = run_one(replace(args, mode="fluid"), spec).summary
        lines.append(f"| {Path(trace).stem} x{scale:g}, first 30 min | {spec} | {a['slo_attainment']:.2%} | {b['slo_attainment']:.2%} | "
                     f"{100 * (b['slo_attainment'] - a['slo_attainment']):+.1f} | {a['gpu_hours']:.2f} | {b['gpu_hours']:.2f} | "
                     f"{100 * (b['gpu_hours'] / a['gpu_hours'] - 1):+.1f}% |")
    return "\n".join([
        "### Fluid mode against request-level",
        "",
        "Goal: within 2 points of SLO attainment and 5% of GPU-hours on overlapping cases.",
        "",
        *lines,
    ])


def baseline_section(trace: str, label: str, mode: str, rate_scale: float = 1.0, jobs: int = 2, lengths_from: str | None = None) -> str:
    policies = ["static:1", "hpa:gpu_util=70", "hpa:waiting=5", "hpa:running=64", "keda", "kpa:64", "oracle"]
    if mode == "fluid":
        policies = [p for p in policies if p != "oracle"]  # the oracle needs request-level arrivals
    args = SimulateArgs(trace=trace, policies=policies, mode=mode, rate_scale=rate_scale, jobs=jobs, max_replicas=200,
                        lengths_from=lengths_from)
    tuned, _ = sweep(args, 0.99, progress=lambda line: None)
    rel = lambda path: str(Path(path).relative_to(TRACES.parent.parent.parent))
    command = (f"headroom simulate --trace ../{rel(trace)} --mode {mode} --sweep --policy {','.join(policies)} --max-replicas 200"
               + (f" --rate-scale {rate_scale:g}" if rate_scale != 1 else "") + (f" --lengths-from ../{rel(lengths_from)}" if lengths_from else ""))
    return "\n".join([f"### {label}", "", f"`{command}`", "", table([r.summary for r in tuned], markdown=True)])
