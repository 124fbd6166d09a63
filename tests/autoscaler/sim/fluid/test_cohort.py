"""Cohort fluid replicas: conservation, readiness, billing, determinism, the engine's limits, and agreement with
the request-level mode on fixed fleets (where a policy's feedback cannot hide a model's error)."""

from dataclasses import replace

import numpy as np
import pytest

from autoscaler.policy.base import Decision
from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.baselines.static import Static
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.cohort import CohortReplicas, StepOutputs
from autoscaler.sim.fluid.cohort_fleet import CohortSimulator
from autoscaler.sim.inputs import fluid_model
from autoscaler.sim.request.simulator import Simulator
from loadgen.workloads.workload import Workload
from serving.profiles import load_profile
from tests.autoscaler.sim.request.test_simulator import Scripted, poisson

PROFILE = load_profile("llama-3.1-8b-h100")


def lognormal(duration_s: float, rate: float, seed: int, prompt: float = 1000, output: float = 200) -> Workload:
    """Poisson arrivals with log-normal prompt and output lengths (a chat-like mix)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * duration_s)
    arrivals = np.sort(rng.uniform(0.0, duration_s, n))
    draw = lambda mean: np.maximum(1, np.round(rng.lognormal(np.log(mean) - 0.5, 1.0, n))).astype(np.int64)
    return Workload("lognormal", arrivals, draw(prompt), np.minimum(draw(output), 2000))


def with_burst(background: Workload, times: np.ndarray, prompt: int, output: int, name: str) -> Workload:
    """`background` with requests of one length at `times`, merged in arrival order."""
    arrivals = np.concatenate([background.arrival_s, times])
    order = np.argsort(arrivals, kind="stable")
    lengths = lambda own, value: np.concatenate([own, np.full(len(times), value)])[order]
    return Workload(
        name, arrivals[order], lengths(background.prompt_tokens, prompt), lengths(background.output_tokens, output)
    )


def test_every_request_routed_leaves_exactly_once():
    outputs = StepOutputs(np.array([0, 0, 0, 1, 1]), np.array([1, 5, 300, 40, 1200]), 2)
    replicas = CohortReplicas(PROFILE, outputs, 1.0, 0.05)
    replicas.add(2)
    replicas.enqueue(np.array([2.0, 1.0]), np.array([2000.0, 1000.0]), 0.5, 0)
    replicas.enqueue(np.array([0.5, 1.5]), np.array([500.0, 1500.0]), 1.5, 1)
    done = first = 0.0
    for step in range(200):
        served = replicas.step(float(step))
        done += served.completions.sum()
        first += served.first_tokens.sum()
        assert served.met.sum() <= served.completions.sum() + 1e-9
    assert first == pytest.approx(5.0) and done == pytest.approx(5.0, abs=1e-3)
    assert replicas.outstanding().sum() < 1e-3 and not replicas.queue.used.any()


def test_conservation_readiness_and_gateway_timeouts():
    w = poisson([(300, 2.0)], seed=1, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, queue_timeout_s=60.0, initial_replicas=0, cold_start_s=30.0)
    result = CohortSimulator(cfg, Scripted(((0, 0), (200, 1))), w).run()
    s, records = result.summary, result.records
    assert records["arrivals"].sum() == len(w) == s["requests"]
    assert records["routed"].sum() + records["failed"].sum() == pytest.approx(len(w))
    assert s["failed"] > 0  # nothing served for 230 s with a 60 s gateway timeout
    started = records[records["routed"] > 0]["time_s"].min()
    assert started >= 230.0  # requested at 200 s, ready 30 s later: none served before
    assert records["met"].sum() <= len(w) - s["failed"] + 1e-6


def test_gpu_hours_by_hand_and_determinism():
    w = poisson([(600, 3.0)], seed=2, prompt=1500, output=300)
    cfg = SimConfig(PROFILE, initial_replicas=2, price_per_gpu_hour=10.0)
    a = CohortSimulator(cfg, Static(2), w).run().summary
    b = CohortSimulator(cfg, Static(2), w).run().summary
    assert a == b
    assert a["gpu_hours"] == pytest.approx(2 * a["duration_s"] / 3600) and a["cost_usd"] == pytest.approx(
        10 * a["gpu_hours"]
    )
    assert a["slo_attainment"] > 0.99 and a["fluid_model"] == "cohort"


def test_a_burst_beyond_the_batch_waits_for_room():
    """400 long prompts at once: the batch holds no more than max_num_seqs and the KV cache allows, the rest wait."""
    profile = PROFILE.with_changes(scheduler={"max_num_seqs": 64})
    w = Workload("burst", np.zeros(400), np.full(400, 3000), np.full(400, 500))
    cfg = SimConfig(profile, initial_replicas=1, timeline_interval_s=5.0)
    result = CohortSimulator(cfg, Static(1), w).run()
    timeline = result.timeline
    assert timeline["running"].max() <= 64 + 3  # the batch, and the prompts of one chunk
    assert timeline["waiting"].iloc[0] > 300
    assert result.summary["requests"] == 400 and result.summary["failed"] == 0


@pytest.mark.parametrize("replicas,rate", [(1, 3.0), (1, 17.0), (4, 28.0)], ids=["light", "near-saturation", "ample"])
def test_fixed_fleets_agree_with_the_request_level(replicas, rate):
    """Attainment, GPU utilization and the gauges policies read, on a chat mix from light to near saturation."""
    w = lognormal(600, rate, seed=4)
    cfg = SimConfig(PROFILE, initial_replicas=replicas, timeline_interval_s=5.0)
    request = Simulator(cfg, w, Static(replicas)).run()
    cohort = CohortSimulator(cfg, Static(replicas), w).run()
    assert abs(cohort.summary["slo_attainment"] - request.summary["slo_attainment"]) <= 0.02
    mean = lambda result, column: float(result.timeline[column].mean())
    assert mean(cohort, "gpu_util") == pytest.approx(mean(request, "gpu_util"), abs=3.0)
    assert mean(cohort, "running") == pytest.approx(mean(request, "running"), rel=0.15, abs=1.0)


def test_the_servers_request_overhead_counts_toward_ttft_in_both_modes():
    """At light load a request overhead of 0.15 s (the profile's) moves the TTFT percentiles by 0.15 s, on the
    engine and here alike."""
    w = lognormal(300, 3.0, seed=6)
    slow = PROFILE.with_changes(efficiency={"request_overhead_s": 0.15})
    for simulate in (lambda cfg: Simulator(cfg, w, Static(1)), lambda cfg: CohortSimulator(cfg, Static(1), w)):
        plain, delayed = (simulate(SimConfig(p, initial_replicas=1)).run().summary for p in (PROFILE, slow))
        for key in ("ttft_p50_s", "ttft_p95_s"):
            assert delayed[key] - plain[key] == pytest.approx(0.15, abs=0.01), key


def test_the_servers_cost_per_prompt_token_counts_toward_ttft_in_both_modes():
    """The server's cost per prompt token at light load: 100 us a token of 300-token prompts moves the TTFT median
    by 30 ms, on the engine and here alike."""
    chat = lognormal(300, 3.0, seed=6)
    n = len(chat.arrival_s)
    w = Workload("fixed", chat.arrival_s, np.full(n, 300), np.full(n, 100))
    slow = PROFILE.with_changes(efficiency={"request_token_s": 1e-4})
    for simulate in (lambda cfg: Simulator(cfg, w, Static(1)), lambda cfg: CohortSimulator(cfg, Static(1), w)):
        plain, delayed = (simulate(SimConfig(p, initial_replicas=1)).run().summary for p in (PROFILE, slow))
        assert delayed["ttft_p50_s"] - plain["ttft_p50_s"] == pytest.approx(0.03, abs=0.006)


def test_a_burst_of_long_prompts_slows_the_answers_beside_it():
    """Answers decoding while a burst's prompts are prefilled beside them take longer steps, on the engine and here:
    their ITL attainment falls alike in both modes."""
    background = lognormal(240, 4.0, seed=5, prompt=300, output=400)
    w = with_burst(background, np.full(120, 60.0), 6000, 20, "burst")
    cfg = SimConfig(PROFILE, initial_replicas=1)
    quiet = CohortSimulator(cfg, Static(1), background).run().summary["slo_attainment"]
    request = Simulator(cfg, w, Static(1)).run().summary["slo_attainment"]
    cohort = CohortSimulator(cfg, Static(1), w).run().summary["slo_attainment"]
    assert quiet > 0.99 and cohort < quiet - 0.1
    assert abs(cohort - request) <= 0.05


@pytest.mark.parametrize("lengths", [(300, 6000), (100, 8000)])
def test_a_backlog_of_many_prompt_lengths_is_prefilled_at_the_engines_pace(lengths):
    """300 requests in one second, short and long prompts in turn: their median TTFT, half the backlog's prefill
    time, agrees with the engine's, as the long prompts' attention is counted by their squared lengths (with the
    mean prompt alone the cohort fleet had prefilled 5% to 7% sooner)."""
    n = 300
    w = Workload("mixed-burst", np.linspace(10.0, 11.0, n, endpoint=False), np.tile(lengths, n // 2), np.full(n, 20))
    cfg = SimConfig(PROFILE, initial_replicas=1)
    request = Simulator(cfg, w, Static(1)).run().summary["ttft_p50_s"]
    cohort = CohortSimulator(cfg, Static(1), w).run().summary["ttft_p50_s"]
    assert request > 10.0
    assert cohort == pytest.approx(request, rel=0.025)


class Watching:
    """Test policy: asks for two replicas at its first tick, then holds; keeps what each snapshot showed."""

    interval_s, name = 5.0, "watching"

    def __init__(self):
        self.seen: dict[float, tuple] = {}

    def initial_state(self):
        return None

    def decide(self, snapshot, state):
        self.seen[snapshot.time_s] = (snapshot.running + snapshot.waiting, [r.gpu_util for r in snapshot.replicas])
        return Decision(2, ("watching",)), None


def test_a_scrape_reads_the_fleet_at_its_instant_as_the_request_level_does():
    """Scrapes at 0, 15, 30 and 45 s. A burst coming just after the one at 30 s is not in it, in either mode (the
    cohort step it falls in once read it half there). The second replica, asked for at 5 s, is ready at 30 s on the
    dot: that scrape reads it idle in both modes, not loaded by the traffic routed to it in the second after."""
    background = lognormal(60, 2.0, seed=6)
    w = with_burst(background, np.linspace(30.1, 30.9, 200), 1000, 1500, "late-burst")
    cfg = SimConfig(PROFILE, initial_replicas=1, cold_start_s=25.0)
    seen = {}
    for mode, simulator in (
        ("request", lambda p: Simulator(cfg, w, p)),
        ("cohort", lambda p: CohortSimulator(cfg, p, w)),
    ):
        policy = Watching()
        simulator(policy).run()
        seen[mode] = policy.seen
    for mode in seen:  # the control at 35 s reads the scrape at 30 s; the one at 50 s, the scrape at 45 s
        in_system_at_30, util_at_30 = seen[mode][35.0]
        assert in_system_at_30 < 20, f"{mode}: the scrape at 30 s saw the burst after it"
        assert len(util_at_30) == 2 and util_at_30[1] == 0.0, f"{mode}: the replica ready at 30 s read {util_at_30}"
        assert seen[mode][50.0][0] > 150, f"{mode}: the scrape at 45 s missed the burst"
        assert min(seen[mode][50.0][1]) > 50.0
    assert seen["cohort"][35.0][0] == pytest.approx(seen["request"][35.0][0], abs=5.0)


class ReadingWaiting(Watching):
    """Test policy: holds one replica; keeps the waiting requests each snapshot showed."""

    def decide(self, snapshot, state):
        self.seen[snapshot.time_s] = snapshot.waiting
        return Decision(1, ("reading",)), None


def test_a_scrape_reads_the_queue_a_burst_left_at_its_instant():
    """150 long prompts in the second before the scrape at 30 s: at its instant most still wait, on the engine and
    here (the cohort step's mean queue, which counted them from their arrival, read half of them)."""
    background = lognormal(60, 1.0, seed=7)
    w = with_burst(background, np.linspace(29.0, 29.99, 150), 3000, 50, "burst-before-scrape")
    cfg = SimConfig(PROFILE, initial_replicas=1)
    seen = {}
    for mode, simulator in (
        ("request", lambda p: Simulator(cfg, w, p)),
        ("cohort", lambda p: CohortSimulator(cfg, p, w)),
    ):
        policy = ReadingWaiting()
        simulator(policy).run()
        seen[mode] = policy.seen[35.0]  # the scrape at 30 s
    assert seen["request"] > 100
    assert seen["cohort"] == pytest.approx(seen["request"], rel=0.1)


def test_the_fluid_model_is_chosen_by_the_trace_and_bad_choices_name_the_flag():
    assert fluid_model(SimulateArgs(trace="t.csv", policies=[]), servegen=False) == "cohort"
    assert fluid_model(SimulateArgs(trace="m-large", policies=[]), servegen=True) == "table"
    assert fluid_model(SimulateArgs(trace="t.csv", policies=[], fluid_model="table"), servegen=False) == "table"
    with pytest.raises(ValueError, match="--fluid-model cohort: a ServeGen folder"):
        fluid_model(SimulateArgs(trace="m-large", policies=[], fluid_model="cohort"), servegen=True)
    with pytest.raises(ValueError, match="--fluid-model: 'exact'"):
        fluid_model(replace(SimulateArgs(trace="t.csv", policies=[]), fluid_model="exact"), servegen=False)


def test_outputs_of_no_tokens_are_refused():
    with pytest.raises(ValueError, match="at least one output token"):
        StepOutputs(np.array([0, 0]), np.array([3, 0]), 1)
