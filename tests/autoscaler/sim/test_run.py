"""`headroom simulate`'s runner on a ServeGen folder: both modes see the same arrivals, scaling applies, the oracle runs."""

import re
from dataclasses import replace

import pytest

from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.run import run_one


@pytest.fixture(scope="module")
def servegen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("servegen")
    (folder / "chunk-1-trace.csv").write_text(
        "0,6.0,2.0,Gamma,0.25,0.67\n600,20.0,1.5,Weibull,0.7,0.04\n1200,4.0,1.0,Gamma,1.0,0.25\n"
    )
    (folder / "chunk-2-trace.csv").write_text("0,2.0,1.0,Gamma,1.0,0.5\n600,0,0,,0,0\n1200,2.0,1.0,Gamma,1.0,0.5\n")
    return folder


def test_fluid_and_request_level_replay_the_same_servegen_arrivals(servegen, sim_cache):
    args = SimulateArgs(
        cache_dir=sim_cache, trace=str(servegen), policies=[], end_s=1200.0, max_replicas=10, initial_replicas=2
    )
    request = run_one(args, "static:2").summary
    fluid = run_one(replace(args, mode="fluid"), "static:2").summary
    assert fluid["requests"] == request["requests"] > 0.9 * (8 * 600 + 20 * 600)
    doubled = run_one(replace(args, mode="fluid", rate_scale=2.0), "static:2").summary
    assert doubled["requests"] == pytest.approx(2 * fluid["requests"], rel=0.05)
    assert doubled["requests"] == run_one(replace(args, rate_scale=2.0), "static:2").summary["requests"]
    faster = run_one(replace(args, mode="fluid", time_scale=2.0), "static:2").summary
    assert faster["duration_s"] < 0.6 * fluid["duration_s"]


def test_oracle_runs_in_fluid_mode_on_servegen(servegen, sim_cache):
    args = SimulateArgs(
        cache_dir=sim_cache, trace=str(servegen), policies=[], end_s=1800.0, max_replicas=10, mode="fluid"
    )
    oracle = run_one(args, "oracle:0.9").summary
    assert oracle["policy"] == "oracle:0.9" and oracle["slo_attainment"] >= 0.99
    assert oracle["gpu_hours"] < run_one(args, "static:3").summary["gpu_hours"]


def test_tables_of_different_length_mixes_are_never_shared(servegen, tmp_path, monkeypatch):
    """A ServeGen run with lengths from a trace, and a run on the first seconds of that trace, in one process. What
    is under test is the keying; the tables' measurement (a minute each on the engine) is recorded instead."""
    from types import SimpleNamespace

    from autoscaler.capacity import load_table
    from autoscaler.sim.args import sim_config
    from autoscaler.sim.inputs import _lengths, cached_table

    built = []
    monkeypatch.setattr(
        load_table,
        "build_load_table",
        lambda profile, prompts, outputs, *a, **kw: (
            built.append(len(prompts)) or SimpleNamespace(mean_prompt_tokens=float(prompts.mean()))
        ),
    )
    from loadgen.workloads.load import load_workload
    from loadgen.workloads.servegen import LengthSampler

    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        "".join(
            f'{{"timestamp": {i * 100}, "input_length": {50 if i < 100 else 800}, "output_length": 20}}\n'
            for i in range(300)
        )
    )
    args = SimulateArgs(trace=str(servegen), policies=[], mode="fluid", lengths_from=str(trace))
    config = sim_config(args)
    whole = cached_table(args, config, _lengths(args.lengths_from))
    start = cached_table(
        replace(args, trace=str(trace)), config, LengthSampler.from_workload(load_workload(str(trace), end_s=10.0))
    )
    assert start.mean_prompt_tokens == 50 and whole.mean_prompt_tokens > 400 and len(built) == 2
    assert cached_table(args, config, _lengths(args.lengths_from)) is whole and len(built) == 2  # the same mix: kept


def test_model_seed_changes_the_fluid_models_draws_but_not_the_arrivals(servegen, tmp_path, monkeypatch, chat_table):
    """--model-seed: the load table is measured with it and the gauges are drawn with it, over the very same
    arrivals; by default it is --seed. What is under test is the seed's path; the tables' measurement (half a minute
    each on the engine; that its seed changes it is tested in tests/autoscaler/capacity) is recorded instead."""
    from autoscaler.capacity import load_table
    from autoscaler.sim import inputs
    from autoscaler.sim.args import sim_config

    measured = []
    monkeypatch.setattr(inputs, "_TABLES", {})
    monkeypatch.setattr(load_table, "build_load_table", lambda *a, seed, **kw: measured.append(seed) or chat_table)
    args = SimulateArgs(
        cache_dir=tmp_path,
        trace=str(servegen),
        policies=[],
        end_s=1200.0,
        max_replicas=10,
        initial_replicas=2,
        mode="fluid",
    )
    other = replace(args, model_seed=7)
    assert sim_config(args).seed == 0 and sim_config(other).seed == 7
    first, second = run_one(args, "hpa:running=8"), run_one(other, "hpa:running=8")
    assert first.summary["requests"] == second.summary["requests"] and measured == [0, 7]
    assert not first.timeline.running.equals(second.timeline.running)  # the gauges' draws
    table = lambda a: inputs.cached_table(a, sim_config(a), inputs._lengths(a.lengths_from))
    assert table(replace(args, model_seed=0)) is table(args) and measured == [0, 7]


def test_clock_phase_out_of_range_is_named(capsys):
    """`headroom simulate --clock-phase -5`: a clear error before any trace is read."""
    from headroom.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", "missing.csv", "--policy", "static:1", "--clock-phase", "-5"])
    assert exit_.value.code == 2
    assert "--clock-phase must be between 0 and 86400 seconds, got -5" in capsys.readouterr().err


def test_clock_phase_moves_a_threshold_policys_decisions(servegen, sim_cache):
    """The same arrivals with the HPA's clocks 7 s later: its first decision comes 7 s later, in both modes."""
    args = SimulateArgs(cache_dir=sim_cache, trace=str(servegen), policies=[], end_s=300.0, max_replicas=10)
    for mode in ("request", "fluid"):
        early = run_one(replace(args, mode=mode), "hpa:running=8").decisions
        late = run_one(replace(args, mode=mode, clock_phase_s=7.0), "hpa:running=8").decisions
        assert late[0][0] == pytest.approx(early[0][0] + 7.0)


def test_a_request_trace_whose_mix_changes_gets_a_table_per_period(monkeypatch):
    """Fluid input for a trace whose answers shorten halfway: one table per half, each measured on that half's
    lengths, the steps told which to read, and the work weighed within each half. (The tables themselves are
    the engine's, tested in test_fluid; here the builder only records what it was asked.)"""
    import numpy as np

    from autoscaler.capacity.load_table import TTFT_QUANTILES, LoadTable
    from autoscaler.sim import inputs
    from autoscaler.sim.args import sim_config
    from autoscaler.sim.inputs import fluid_input
    from loadgen.workloads.workload import Workload

    asked = []

    def measured(cache, config, prompts, outputs, seed):
        asked.append(float(outputs.mean()))
        two, rows = np.array([0.0, 1.0]), np.zeros((2, len(TTFT_QUANTILES)))
        return LoadTable(
            two,
            two,
            two,
            two,
            two,
            two,
            rows,
            rows,
            rows,
            two,
            two,
            1.0,
            1.0,
            float(outputs.mean()),
            float(prompts.mean()),
            prompt_token_weight=0.1 * len(asked),
        )

    monkeypatch.setattr(inputs, "cached_load_table", measured)
    inputs._TABLES.clear()
    arrivals = np.arange(0.0, 1200.0, 0.5)
    outputs = np.where(arrivals < 600, 300, 60)
    workload = Workload("halves", arrivals, np.full(len(arrivals), 1000), outputs)
    args = SimulateArgs(trace="halves.csv", policies=[], mode="fluid", fluid_model="table")
    feed = fluid_input(args, sim_config(args), workload)
    assert sorted(asked) == [60.0, 300.0] and len(feed.tables) == 2
    assert feed.tables[0].mean_output_tokens == 300.0 and feed.tables[1].mean_output_tokens == 60.0
    assert feed.period_of_step[:600].tolist() == [0] * 600 and set(feed.period_of_step[600:].tolist()) == {1}
    np.testing.assert_allclose(feed.work, feed.counts)  # alike requests within a period: each weighs one


@pytest.mark.parametrize(
    "flags, named",
    [
        ({"scrape_interval_s": 0}, "--scrape-interval must be between 0.1 and 3600 seconds, got 0"),
        ({"cold_start_s": -5}, "--cold-start must be a finite number of seconds >= 0, got -5"),
        ({"max_replicas": 0}, "--max-replicas must be a whole number from 1 to 100000, got 0"),
        ({"min_replicas": 5, "max_replicas": 3}, "--min-replicas (5) is above --max-replicas (3)"),
        ({"time_scale": float("nan")}, "--time-scale must be a finite number > 0"),
        ({"start_s": 100, "end_s": 50}, "--end must be a finite number of seconds after --start"),
    ],
)
def test_nonsensical_flags_are_refused_before_anything_runs(flags, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        SimulateArgs(trace="t.csv", policies=["static:1"], **flags)


@pytest.mark.parametrize("spec", ["kpa:0", "keda:0", "hpa:running=0", "kpa:nan", "keda:inf", "hpa:gpu_util=-5"])
def test_policy_targets_must_be_positive_and_finite(spec):
    from autoscaler.sim.policies import PolicyContext, PolicySpecError, parse_policy

    with pytest.raises(PolicySpecError, match=re.escape(spec)):
        parse_policy(spec, PolicyContext())


@pytest.mark.parametrize(
    "stamp, problem",
    [("NaN", "must be a finite number"), ("Infinity", "must be a finite number"), ("1e15", "at most 366 days")],
)
def test_traces_with_absurd_timestamps_are_refused(tmp_path, stamp, problem):
    from loadgen.workloads.jsonl import load_jsonl
    from loadgen.workloads.workload import TraceError

    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"timestamp": 0, "input_length": 5, "output_length": 5}\n'
        f'{{"timestamp": {stamp}, "input_length": 5, "output_length": 5}}\n'
    )
    with pytest.raises(TraceError, match=re.escape(problem)):
        load_jsonl(path)
