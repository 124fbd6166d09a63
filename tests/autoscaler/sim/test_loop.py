"""The fleet loop: arrivals and clock ticks in the model's key order, control within max_replicas, a clean stop."""

import math

import numpy as np

from autoscaler.policy.base import Decision
from autoscaler.sim.config import SimConfig
from autoscaler.sim.loop import FleetLoop, Gauges
from autoscaler.sim.observe import Scrape
from autoscaler.sim.results import SimResult
from serving.profiles import load_profile


class AskFor:
    """A policy that asks for a fixed count every 10 s."""

    name, interval_s = "ask", 10.0

    def __init__(self, desired: int):
        self.desired = desired

    def initial_state(self):
        return None

    def decide(self, snapshot, state):
        return Decision(self.desired, "fixed"), state


class Arrivals:
    """Arrivals at given times that hold nothing; it logs what the loop does, in order."""

    def __init__(self, times: list[float]):
        self.times, self.next, self.log, self.scaled = times, 0, [], []

    def next_key(self, loop):
        return (self.times[self.next], -1) if self.next < len(self.times) else None

    def clock_key(self, when, kind, order):
        return (when, order)

    def advance(self, loop):
        self.log.append(("arrival", self.times[self.next]))
        self.next += 1
        loop.arrivals += 1

    def on_event(self, loop, now, kind, payload):
        raise AssertionError(kind)

    def reading(self, loop, now):
        self.log.append(("scrape", now))
        return Scrape(now, 0.0, loop.arrivals, 0.0, 0.0, np.zeros(3), 0.0, 0.0, (), 0.0)

    def in_flight(self, now):
        return 0.0

    def counts(self, now):
        return (1, 0, 0)

    def scale_to(self, loop, desired, now):
        self.log.append(("control", now))
        self.scaled.append(desired)

    def gauges(self, now, since):
        self.log.append(("timeline", now))
        return Gauges(0.0, 0.0, 0.0, 0.0)

    def result(self, run):
        return SimResult({}, None, run.timeline, run.decisions)


def run(times, desired=3, **config):
    model = Arrivals(times)
    config = {"scrape_interval_s": 15.0, "timeline_interval_s": 20.0, **config}
    loop = FleetLoop(SimConfig(load_profile("llama-3.1-8b-h100"), **config), AskFor(desired), model)
    return model, loop, loop.run()


def test_an_arrival_comes_before_a_tick_at_the_same_time_and_tied_ticks_keep_their_scheduling_order():
    model, _, _ = run([10.0, 15.0, 40.5])
    assert model.log == [
        ("scrape", 0.0),
        ("arrival", 10.0),
        ("control", 10.0),
        ("arrival", 15.0),
        ("scrape", 15.0),
        ("timeline", 20.0),
        ("control", 20.0),  # the row at 20 was scheduled at the start, the tick at 20 at 10
        ("scrape", 30.0),  # scheduled at 15, the control tick at 20
        ("control", 30.0),
        ("timeline", 40.0),
        ("control", 40.0),
        ("arrival", 40.5),
    ]


def test_control_stays_within_max_replicas_and_the_timeline_counts_arrivals():
    model, loop, result = run([1.0, 2.0, 25.0], desired=50, max_replicas=4)
    assert set(model.scaled) == {4} and loop.desired == 4
    assert [d.desired for _, d in result.decisions] == [50, 50]
    assert [row["arrivals"] for row in result.timeline] == [2.0]
    assert result.timeline[0]["arrival_rate"] == 2.0 / 20.0


def test_the_scrape_records_the_arrivals_and_the_clock_phase_moves_every_clock():
    model, loop, _ = run([3.0, 9.0], clock_phase_s=7.0)
    scrapes = loop.observer.scrapes
    assert [(s.time, s.arrivals) for s in scrapes] == [(7.0, 1.0)]
    assert ("control", 17.0) not in model.log  # the run ended at the last arrival, before the first tick
    assert math.isinf(loop.next_scrape) is False and loop.next_scrape == 22.0
