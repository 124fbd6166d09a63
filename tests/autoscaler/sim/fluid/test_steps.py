"""Fluid mode's order keys: each clock tick sorts into the step it falls in, as the step loop read it."""

import numpy as np
import pytest

from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.steps import Steps
from serving.profiles import load_profile


@pytest.mark.parametrize("step_s", [1.0, 15.0, 0.1, 0.3])
def test_a_tick_falls_in_the_first_step_that_ends_after_it(step_s):
    steps = Steps(SimConfig(load_profile("llama-3.1-8b-h100")), None, np.zeros(10), step_s)
    for k in range(200):
        for when in (k * step_s, k * step_s + step_s / 3, (k + 1) * step_s * (1 - 1e-16)):
            step = steps.clock_key(when, "scrape", 0)[0]
            assert when < step * step_s + step_s and (step == 0 or when >= (step - 1) * step_s + step_s)
            row = steps.clock_key(when, "timeline", 0)[0]
            assert when <= row * step_s + step_s and (row == 0 or when > (row - 1) * step_s + step_s)


def test_in_a_step_control_comes_before_a_scrape_at_the_same_time_and_rows_come_last():
    steps = Steps(SimConfig(load_profile("llama-3.1-8b-h100")), None, np.zeros(10), 15.0)
    keys = sorted(
        [
            (steps.clock_key(30.0, "timeline", 0), "timeline 30"),
            (steps.clock_key(20.0, "scrape", 1), "scrape 20"),
            (steps.clock_key(20.0, "control", 2), "control 20"),
            (steps.clock_key(15.0, "timeline", 3), "timeline 15"),
        ]
    )
    assert [name for _, name in keys] == ["timeline 15", "control 20", "scrape 20", "timeline 30"]
    assert keys[0][0] < (1, -1) < keys[1][0]  # the row at 15 closes step 0; the ticks at 20 follow step 1
