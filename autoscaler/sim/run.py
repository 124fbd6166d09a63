"""`headroom simulate`: each policy over the trace (request-level or fluid), with a progress bar, in parallel
processes when asked."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autoscaler.sim.args import SimulateArgs, load_trace, sim_config
from autoscaler.sim.baselines.oracle import ArrivalTimes
from autoscaler.sim.config import SimConfig
from autoscaler.sim.inputs import FluidInput, fluid_input, replica_capacity
from autoscaler.sim.policies import PolicyContext, parse_policy, policy_context
from autoscaler.sim.request.simulator import Simulator
from autoscaler.sim.results import SimResult


def _progress(name: str):
    def report(fraction: float) -> None:
        filled = int(fraction * 30)
        print(
            f"\r  {name:28s} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}", end="", file=sys.stderr, flush=True
        )
        if fraction >= 1.0:
            print(file=sys.stderr)

    return report


def fluid_run(config: SimConfig, policy, feed: FluidInput) -> SimResult:
    from autoscaler.sim.fluid.table import FluidSimulator

    if feed.workload is not None:
        from autoscaler.sim.fluid.cohort_fleet import CohortSimulator

        return CohortSimulator(config, policy, feed.workload, feed.step_s).run()

    return FluidSimulator(
        config,
        None,
        policy,
        counts=feed.counts,
        work=feed.work,
        lengths=feed.lengths,
        table=feed.table,
        step_s=feed.step_s,
        name=feed.name,
        tables=feed.tables,
        period_of_step=feed.period_of_step,
    ).run()


def run_one(args: SimulateArgs, spec: str, show_progress: bool = False) -> SimResult:
    config = sim_config(args)
    servegen = args.mode == "fluid" and Path(args.trace).is_dir()
    workload = None if servegen else load_trace(args)
    if args.mode == "fluid":
        feed = fluid_input(args, config, workload)
        policy = parse_policy(spec, policy_context(args, config, feed.future, feed.capacity_rps))
        return fluid_run(config, policy, feed)
    policy = parse_policy(
        spec,
        policy_context(
            args, config, ArrivalTimes(workload.arrival_s), lambda: replica_capacity(args, config, workload)
        ),
    )
    result = Simulator(config, workload, policy, progress=_progress(policy.name) if show_progress else None).run()
    if show_progress:
        _progress(policy.name)(1.0)
    return result


def run_all(args: SimulateArgs) -> list[SimResult]:
    """Every policy over the same trace; in parallel processes with --jobs (results are the same either way)."""
    if not (args.mode == "fluid" and Path(args.trace).is_dir()):
        load_trace(args)  # fail early on a bad trace, before forking
    for spec in args.policies:
        parse_policy(
            spec, PolicyContext(oracle_factory=lambda derate, window_s: None, predictive_factory=lambda fill: None)
        )  # and on a bad policy spec
    if args.jobs > 1 and len(args.policies) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            return list(pool.map(run_one, [args] * len(args.policies), args.policies))
    return [run_one(args, spec, show_progress=True) for spec in args.policies]
