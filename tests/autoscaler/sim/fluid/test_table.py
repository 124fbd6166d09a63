"""Fluid mode: conservation, billing, determinism, ServeGen counts, and agreement with the request-level mode."""

import numpy as np
import pytest

from autoscaler.capacity.load_table import build_load_table
from autoscaler.sim.baselines.oracle import Oracle, StepCounts
from autoscaler.sim.baselines.static import Static
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.fleet import counts_from_workload, work_from_workload
from autoscaler.sim.fluid.served import Served, merge_alike
from autoscaler.sim.fluid.table import FluidSimulator
from autoscaler.sim.request.simulator import Simulator
from loadgen.workloads.servegen import LengthSampler
from loadgen.workloads.workload import Workload
from serving.profiles import load_profile
from tests.autoscaler.sim.request.test_simulator import Scripted, poisson

PROFILE = load_profile("llama-3.1-8b-h100")
# tables these tests measure for themselves: fewer load points (half the engine time), interpolated between
FEWER_POINTS = (0.05, 0.3, 0.6, 0.8, 0.9, 1.0, 1.1)


@pytest.fixture(scope="module")
def table(chat_table):
    return chat_table


def test_load_table_is_monotone_where_it_matters(table):
    assert table.slo_capacity_rps > 1 and table.max_throughput_rps >= table.slo_capacity_rps * 0.9
    assert table.attainment[0] == 1.0 and table.attainment[-1] < 0.99
    assert np.all(np.diff(table.running) >= -0.05 * table.running.max())  # more load, more in the batch, until KV-bound


def test_conservation_and_timeouts(table):
    w = poisson([(300, 2.0)], seed=1, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, queue_timeout_s=60.0, initial_replicas=0)
    result = FluidSimulator(cfg, w, Scripted(((0, 0), (200, 1))), table=table).run()
    s, records = result.summary, result.records
    assert records["arrivals"].sum() == len(w) == s["requests"]
    assert records["routed"].sum() + records["failed"].sum() == pytest.approx(len(w))
    assert s["failed"] > 0  # nothing served for 200 s with a 60 s gateway timeout


def test_gpu_hours_and_determinism(table):
    w = poisson([(600, 3.0)], seed=2, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, initial_replicas=2, price_per_gpu_hour=10.0)
    a = FluidSimulator(cfg, w, Static(2), table=table).run().summary
    b = FluidSimulator(cfg, w, Static(2), table=table).run().summary
    assert a == b
    assert a["gpu_hours"] == pytest.approx(2 * a["duration_s"] / 3600)
    assert a["slo_attainment"] == pytest.approx(1.0)


@pytest.mark.parametrize("policy", [Static(2), Static(4)], ids=["static-overloaded", "static-ample"])
def test_fluid_agrees_with_request_level(table, policy):
    """Within 2 points of attainment and 5% of GPU-hours, through overload and backlog drain. Reactive policies
    are compared on the Azure traces in docs/benchmarks.md (`python -m bench sim-cross`)."""
    cap = table.slo_capacity_rps
    w = poisson([(600, 0.6 * cap), (600, 2.4 * cap), (600, 1.2 * cap)], seed=3, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, initial_replicas=2, cold_start_s=90.0)
    request = Simulator(cfg, w, policy).run().summary
    fluid = FluidSimulator(cfg, w, policy, table=table).run().summary
    assert abs(fluid["slo_attainment"] - request["slo_attainment"]) <= 0.02
    assert fluid["gpu_hours"] == pytest.approx(request["gpu_hours"], rel=0.05)


def test_fluid_oracle_meets_the_slo_on_step_counts(table):
    """The oracle on per-step counts (what it knows of a ServeGen trace) keeps the SLO through a surge and a fall."""
    cap = table.slo_capacity_rps
    w = poisson([(600, 0.5 * cap), (600, 3.5 * cap), (600, 1.2 * cap)], seed=5, prompt=1500, output=300)
    counts = counts_from_workload(w, 15.0)
    oracle = Oracle(StepCounts(counts, 15.0), 0.9 * cap, cold_start_s=90.0)
    cfg = SimConfig(PROFILE, initial_replicas=1, cold_start_s=90.0)
    s = (
        FluidSimulator(
            cfg, None, oracle, counts=counts, lengths=LengthSampler.from_workload(w), table=table, step_s=15.0
        )
        .run()
        .summary
    )
    assert s["slo_attainment"] >= 0.99
    assert s["max_replicas"] >= 4 and s["mean_replicas"] < 4


def test_a_burst_waits_for_its_prefills(table):
    """Five seconds' worth of prefills arriving within one second: the late ones miss TTFT in both modes. The fluid
    state (requests inside) stays under a full batch, so only the burst term makes the fluid mode see it."""
    from dataclasses import replace as with_field

    from loadgen.workloads.workload import Workload

    burst = int(5 * table.prefill_rps)
    rng = np.random.default_rng(1)
    times = np.sort(np.concatenate([rng.uniform(0, 1, burst), rng.uniform(0, 300, 300)]))
    w = Workload("burst", times, np.full(len(times), 1500), np.full(len(times), 300))
    cfg = SimConfig(PROFILE, initial_replicas=1, cold_start_s=0.0)
    request = Simulator(cfg, w, Static(1)).run().summary["slo_attainment"]
    fluid = FluidSimulator(cfg, w, Static(1), table=table).run().summary["slo_attainment"]
    blind = (
        FluidSimulator(cfg, w, Static(1), table=with_field(table, prefill_rps=np.inf)).run().summary["slo_attainment"]
    )
    assert request < 0.9 and abs(fluid - request) <= 0.1
    assert blind > request + 0.1


def test_judging_window_in_both_modes(table):
    """--judge-from: the summary covers only what comes after, priced by hand (a scale-up at 300 s to 3 replicas of
    which the third is ready at 390 s, judged from 600 s: 3 replicas for the rest), in both modes alike."""
    w = poisson([(300, 1.0), (900, 3.0)], seed=4, prompt=1500, output=300)
    policy = Scripted(((0, 2), (300, 3)), interval_s=15.0)
    cfg = SimConfig(PROFILE, initial_replicas=2, cold_start_s=90.0, judge_from_s=600.0)
    whole = SimConfig(PROFILE, initial_replicas=2, cold_start_s=90.0)
    for simulator in (Simulator(cfg, w, policy), FluidSimulator(cfg, w, policy, table=table)):
        s = simulator.run().summary
        assert s["requests"] == np.count_nonzero(w.arrival_s >= 600.0)
        assert s["gpu_hours"] == pytest.approx(3 * s["duration_s"] / 3600, rel=1e-6)
        assert s["scale_actions"] == 0 and s["judged_from_s"] == 600.0
    full = Simulator(whole, w, policy).run().summary
    assert full["scale_actions"] == 1 and full["requests"] == len(w)


def test_work_weighs_each_request_by_its_lengths():
    """Per-step work sums to the request count; a step of long answers weighs more than one of short ones."""
    w = Workload("mix", np.array([0.2, 0.5, 1.5, 1.7]), np.array([100, 100, 100, 100]), np.array([300, 300, 100, 100]))
    work = work_from_workload(w, 1.0, prompt_token_weight=0.0)
    assert work.sum() == pytest.approx(len(w)) and counts_from_workload(w, 1.0)[:2].tolist() == [2, 2]
    assert work[0] == pytest.approx(2 * 300 / 200) and work[1] == pytest.approx(2 * 100 / 200)
    heavy_prompts = Workload("p", w.arrival_s, np.array([4000, 4000, 100, 100]), np.array([200, 200, 200, 200]))
    weighted = work_from_workload(heavy_prompts, 1.0, prompt_token_weight=0.1)
    assert weighted[0] > 2 > weighted[1] and weighted.sum() == pytest.approx(4)  # two requests in each step


@pytest.fixture(scope="module")
def drifting():
    """Ten minutes of long answers, then ten of long prompts with short answers, at the same request rate."""
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(0, 1200, rng.poisson(6.0 * 1200)))
    late = times >= 600
    w = Workload("drift", times, np.where(late, 3000, 500), np.where(late, 60, 400))
    return w, build_load_table(PROFILE, w.prompt_tokens, w.output_tokens, 1.0, 0.05, points=FEWER_POINTS)


def test_fluid_load_follows_the_length_mix(drifting):
    """The requests a replica holds fall with the answers' length in both modes; counted by requests alone (the
    mix's mean for every request) the fluid mode would hold as many in both halves."""
    w, table = drifting
    assert 0.0 < table.prompt_token_weight < 0.5  # a prompt token loads a replica less than an output token
    cfg = SimConfig(PROFILE, initial_replicas=1)
    held = lambda result: [
        result.timeline.loc[(result.timeline.time_s > a) & (result.timeline.time_s <= b), "running"].mean()
        for a, b in ((120, 600), (720, 1200))
    ]
    request = held(Simulator(cfg, w, Static(1)).run())
    fluid_run = FluidSimulator(cfg, w, Static(1), table=table).run()
    fluid = held(fluid_run)
    by_count = held(
        FluidSimulator(
            cfg,
            None,
            Static(1),
            counts=counts_from_workload(w, 1.0),
            lengths=LengthSampler.from_workload(w),
            table=table,
        ).run()
    )
    assert fluid[0] == pytest.approx(request[0], rel=0.15)
    assert fluid[1] / fluid[0] < 0.6 and request[1] / request[0] < 0.6 and by_count[1] / by_count[0] > 0.9
    assert fluid_run.summary["requests"] == len(w) and fluid_run.records["routed"].sum() == pytest.approx(len(w))


class Recorder(Scripted):
    """Scripted, keeping (decision time, time of the scrape read, mean GPU utilization read) for each decision."""

    def decide(self, snapshot, state):
        utils = [r.gpu_util for r in snapshot.replicas]
        self.seen.append(
            (snapshot.time_s, snapshot.time_s - snapshot.sample_age_s, float(np.mean(utils)) if utils else 0.0)
        )
        return super().decide(snapshot, state)


def recorded(simulator) -> list:
    simulator.policy.seen.clear()
    simulator.run()
    return list(simulator.policy.seen)


def test_clock_phase_in_both_modes(table):
    """The scrape and control clocks start `clock_phase_s` into the trace, in both modes alike; a control at the
    time of a scrape reads the one before it (the same observation lag in both)."""
    Recorder.seen = []

    w = poisson([(120, 2.0)], seed=6, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, initial_replicas=1, clock_phase_s=7.0)
    for simulator in (
        Simulator(cfg, w, Recorder(((0, 1),), interval_s=15.0)),
        FluidSimulator(cfg, w, Recorder(((0, 1),), interval_s=15.0), table=table),
    ):
        seen = recorded(simulator)
        assert seen[0][0] == pytest.approx(22.0) and seen[1][0] == pytest.approx(37.0)
        assert all(scraped == pytest.approx(when - 15.0, abs=1e-6) for when, scraped, _ in seen)


def test_gpu_utilization_is_the_busy_share_since_the_last_scrape(table):
    """As DCGM reads it: a replica idle for 10 s of a 15 s scrape interval and busy after reports about a third
    of its busy utilization at that scrape, in both modes (not the utilization of the instant it is scraped)."""
    Recorder.seen = []
    w = poisson([(10, 0.0), (110, 2.0)], seed=7, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, initial_replicas=1)
    policy = lambda: Recorder(((0, 1),), interval_s=15.0)
    request = {when: util for when, _, util in recorded(Simulator(cfg, w, policy()))}
    fluid = {when: util for when, _, util in recorded(FluidSimulator(cfg, w, policy(), table=table))}
    busy = np.mean([fluid[t] for t in (75.0, 90.0, 105.0)])
    assert fluid[30.0] < 0.5 * busy  # the scrape at 15 s: busy from 10 s on
    assert fluid[30.0] == pytest.approx(request[30.0], abs=10.0)
    assert busy == pytest.approx(np.mean([request[t] for t in (75.0, 90.0, 105.0)]), abs=10.0)


def test_replicas_in_one_state_are_served_as_one_row(table):
    from autoscaler.sim.fluid.dynamics import ReplicaDynamics

    states = np.array([40.0, 12.0, 40.0, 40.0, 12.0, 12.0, 90.0])
    waits = np.array([0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0])
    requests = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    merged = merge_alike(states, requests, waits)
    rows = sorted(zip(*(column.tolist() for column in merged)))
    assert rows == [(12.0, 13.0, 0.0), (40.0, 4.0, 0.0), (40.0, 4.0, 0.3), (90.0, 7.0, 0.0)]
    model = ReplicaDynamics(table, 1.0)
    apart, together = Served([model], 1.0, np.array([100.0])), Served([model], 1.0, np.array([100.0]))
    for s, r, w in zip(states, requests, waits):  # one replica a row: nothing to merge
        apart.add(0, np.array([s]), np.array([r]), np.array([w]))
    together.add(0, states, requests, waits)
    assert len(together.pending[0][1]) == 4
    for served in (apart, together):
        served.flush()
    np.testing.assert_allclose(together.ttft_counts, apart.ttft_counts)
    np.testing.assert_allclose(together.met_per_step(1), apart.met_per_step(1))
    np.testing.assert_allclose(together.ttft_fine, apart.ttft_fine)
    assert together.itl_sum == pytest.approx(apart.itl_sum)


def by_periods(cfg: SimConfig, w: Workload, policy, tables: list, period_of_step: np.ndarray) -> FluidSimulator:
    """Fluid mode on `w`'s per-second counts and lengths, each step read with its mix period's table."""
    return FluidSimulator(
        cfg,
        None,
        policy,
        counts=counts_from_workload(w, 1.0),
        lengths=LengthSampler.from_workload(w),
        tables=tables,
        period_of_step=period_of_step,
    )


def test_one_table_per_mix_period_reads_each_period_at_its_own_mix(table):
    """The first half asks long answers, the second short ones at a higher rate: each half near its own mix's
    capacity. Read with each half's table, the fluid mode agrees with the request level; read with the first
    half's table throughout, it sees the second half as an overload that the engine does not show."""
    short = build_load_table(PROFILE, np.full(50, 1500), np.full(50, 60), 1.0, 0.05, points=FEWER_POINTS)
    long_half = poisson([(900, 0.8 * table.slo_capacity_rps)], seed=5, prompt=1500, output=300)
    short_half = poisson([(900, 0.8 * short.slo_capacity_rps)], seed=6, prompt=1500, output=60)
    w = Workload(
        "halves",
        np.concatenate([long_half.arrival_s, 900.0 + short_half.arrival_s]),
        np.concatenate([long_half.prompt_tokens, short_half.prompt_tokens]),
        np.concatenate([long_half.output_tokens, short_half.output_tokens]),
    )
    cfg = SimConfig(PROFILE, initial_replicas=1)
    halves = (np.arange(len(counts_from_workload(w, 1.0))) >= 900).astype(np.int64)
    run = lambda tables: by_periods(cfg, w, Static(1), tables, halves).run().summary
    request = Simulator(cfg, w, Static(1)).run().summary
    by_period, first_throughout = run([table, short]), run([table, table])
    assert abs(by_period["slo_attainment"] - request["slo_attainment"]) <= 0.02
    assert request["slo_attainment"] - first_throughout["slo_attainment"] > 0.1
    assert by_period["output_tokens"] == pytest.approx(len(long_half) * 300 + len(short_half) * 60, rel=1e-6)


def test_tables_per_period_with_one_table_change_nothing(table):
    w = poisson([(600, 2.0), (600, 6.0)], seed=7, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, initial_replicas=2)
    counts = counts_from_workload(w, 1.0)
    alternating = (np.arange(len(counts)) // 37 % 2).astype(np.int64)
    one = FluidSimulator(cfg, w, Static(2), table=table).run().summary
    split = by_periods(cfg, w, Static(2), [table, table], alternating).run().summary
    for key, value in one.items():
        assert split[key] == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value), key


def test_mix_periods_must_match_the_steps_and_the_tables(table):
    w = poisson([(60, 2.0)], seed=8, prompt=1500, output=300)
    counts = counts_from_workload(w, 1.0)
    make = lambda **kw: FluidSimulator(
        SimConfig(PROFILE), None, Static(1), counts=counts, lengths=LengthSampler.from_workload(w), **kw
    )
    with pytest.raises(ValueError, match="steps of mix periods for"):
        make(tables=[table], period_of_step=np.zeros(len(counts) - 1, dtype=np.int64))
    with pytest.raises(ValueError, match="must index the 1 tables given"):
        make(tables=[table], period_of_step=np.ones(len(counts), dtype=np.int64))
    with pytest.raises(ValueError, match="need their period_of_step"):
        make(tables=[table])


def test_work_is_weighed_within_each_mix_period():
    w = Workload(
        "two mixes", np.array([0.5, 1.5, 2.5, 3.5]), np.array([100, 100, 1000, 1000]), np.array([10, 30, 100, 300])
    )
    work = work_from_workload(w, 1.0, np.array([0.0, 0.0]), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(work[:4], [0.5, 1.5, 0.5, 1.5])  # each request against its own period's mean


class ConcurrencyProbe(Scripted):
    """Scripted, keeping the concurrency each 2 s control tick is shown (what Knative's KPA averages)."""

    def decide(self, snapshot, state):
        self.seen.append(snapshot.extra["in_flight_now"])
        return super().decide(snapshot, state)


def test_a_burst_lifts_the_concurrency_for_as_long_as_on_the_engine():
    """Bursts of five seconds' arrivals within one second on half the SLO capacity, at a fixed fleet: the 6 s mean
    concurrency after each burst (the KPA's panic window) reads as in the request level, because its requests
    stay inside until served; with completions that follow the state at once it reads well under it."""
    rng = np.random.default_rng(3)  # lengths spread as a trace's are: requests of one burst finish apart
    prompts, outputs = (np.maximum(1, rng.exponential(mean, 400)).astype(int) for mean in (1500, 300))
    table = build_load_table(PROFILE, prompts[:200], outputs[:200], 1.0, 0.05, points=FEWER_POINTS)
    rate = 0.5 * table.slo_capacity_rps
    bursts = [rng.uniform(t, t + 1.0, int(5 * rate)) for t in range(30, 600, 60)]
    times = np.sort(np.concatenate([rng.uniform(0, 600, rng.poisson(600 * rate)), *bursts]))
    pick = rng.integers(0, len(prompts), len(times))
    w = Workload("bursts", times, prompts[pick], outputs[pick])
    cfg = SimConfig(PROFILE, initial_replicas=1, cold_start_s=0.0)

    def after_bursts(simulator) -> float:
        seen = np.array(recorded(simulator))  # ticks at 2, 4, ... s
        return float(np.mean([seen[(t + 2) // 2 - 1 : (t + 8) // 2 - 1].mean() for t in range(30, 600, 60)]))

    ConcurrencyProbe.seen = []
    probe = lambda: ConcurrencyProbe(((0, 1),), interval_s=2.0)
    request = after_bursts(Simulator(cfg, w, probe()))
    lagging = after_bursts(FluidSimulator(cfg, w, probe(), table=table))
    at_once = after_bursts(FluidSimulator(cfg, w, probe(), table=table, completion_lag_s=0.0))
    assert lagging == pytest.approx(request, rel=0.1)
    assert at_once < lagging - 0.05 * request
