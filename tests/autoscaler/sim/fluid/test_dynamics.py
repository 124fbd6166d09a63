"""The fluid replica: steady states on the load table, gradual batch filling, backlog drained at the saturated rate,
completions that lag the state by a residence time."""

import itertools

import numpy as np
import pytest

from autoscaler.sim.fluid.dynamics import ReplicaDynamics
from serving.profiles import load_profile

PROFILE = load_profile("llama-3.1-8b-h100")


@pytest.fixture(scope="module")
def table(chat_table):
    return chat_table


def run(model: ReplicaDynamics, rate: float | list[float], steps: int, n0: float = 0.0) -> list[float]:
    """Requests inside after each step at `rate` (or a rate per step), from a replica settled at n0."""
    rates = np.broadcast_to(np.asarray(rate, dtype=np.float64), (steps,))
    n, lagged, trace = np.array([n0]), np.array([n0]), []
    for r in rates:
        n, lagged = model.step(n + r * model.step_s, lagged)
        trace.append(float(n[0]))
    return trace


@pytest.mark.parametrize("step_s", [1.0, 15.0])
def test_constant_rate_settles_on_the_tables_steady_state(table, step_s):
    model = ReplicaDynamics(table, step_s)
    for row in range(1, len(table.rates) - 1):  # the stable rows
        n = run(model, table.rates[row], 400)[-1]
        assert n == pytest.approx(table.running[row] + table.waiting[row], rel=0.02, abs=0.05)
        assert model.throughput(np.array([n]))[0] == pytest.approx(table.rates[row], rel=0.02)


def test_a_surge_fills_the_batch_gradually_then_queues(table):
    model = ReplicaDynamics(table, 1.0)
    rate = 2.0 * table.max_throughput_rps
    trace = run(model, rate, 300)
    assert all(b >= a for a, b in itertools.pairwise(trace))  # monotone filling
    assert trace[0] < model.n_sat  # not full after one second
    # once the batch is full, the excess queues at the arrival rate minus the saturated throughput
    late = np.diff(trace[-50:])
    assert late.mean() == pytest.approx(rate - table.max_throughput_rps, rel=0.01)
    delay = model.queue_delay(np.array([trace[-1]]))[0]
    assert delay == pytest.approx((trace[-1] - model.n_sat) / table.max_throughput_rps)


def test_backlog_drains_at_the_saturated_throughput(table):
    model = ReplicaDynamics(table, 5.0)
    start = model.n_sat + 1000.0
    trace = run(model, 0.0, 4, n0=start)
    assert start - trace[0] == pytest.approx(table.max_throughput_rps * 5.0, rel=1e-6)
    assert run(model, 0.0, 2000, n0=start)[-1] < 0.5  # and empties


def test_a_burst_stays_inside_for_about_a_residence_time(table):
    """Five seconds' arrivals in one on top of half the SLO capacity: the burst's requests are served before they
    leave, so one lag later more of them are still inside than with completions that follow the state at once
    (backward Euler); both let the same request-seconds out in the end (the lag moves completions, it adds none)."""
    model = ReplicaDynamics(table, 1.0)
    rate = 0.5 * table.slo_capacity_rps
    settled = run(model, rate, 400)[-1]
    assert model.lag_s == pytest.approx(settled / rate, rel=0.05)  # Little's law
    steps = 120
    rates = [rate] * steps
    rates[0] = 6 * rate
    lagging = np.array(run(model, rates, steps, n0=settled)) - settled
    prompt = np.array(run(ReplicaDynamics(table, 1.0, lag_s=0.0), rates, steps, n0=settled)) - settled
    after_a_lag = int(round(model.lag_s))
    assert lagging[0] > prompt[0] + 1.5  # hardly any of it done within its first second
    assert lagging[after_a_lag] > 1.15 * prompt[after_a_lag]
    assert lagging.sum() == pytest.approx(prompt.sum(), rel=0.05)


def test_long_steps_against_the_lag_are_backward_euler(table):
    """Steps of 15 s (ServeGen's windows) are long against a residence time of seconds: the lag all but vanishes."""
    model = ReplicaDynamics(table, 15.0)
    assert model.blend > 0.95


def test_gauges_follow_the_state_with_the_measured_spread(table):
    model = ReplicaDynamics(table, 5.0, seed=3)
    row = len(table.rates) // 2
    n = np.full(4000, table.running[row] + table.waiting[row])
    running, waiting, kv, util = model.gauges(n)
    assert running.mean() == pytest.approx(table.running[row], rel=0.1)
    assert running.std() > 0  # instantaneous counts vary around the mean
    assert np.all(waiting >= 0) and np.all((kv >= 0) & (kv <= 1)) and np.all((util >= 0) & (util <= 100))
    a = ReplicaDynamics(table, 5.0, seed=3).gauges(n)[0]
    assert np.array_equal(a, running)  # by seed
