"""Replica capacity at the SLO on the engine model, including SLOs no replica can meet."""

import logging

import numpy as np

from autoscaler.capacity.engine_capacity import attainment_at, slo_capacity
from serving.profiles import load_profile


def test_an_unattainable_ttft_target_still_gives_a_finite_capacity(caplog):
    profile = load_profile("llama-3.1-8b-h100")
    prompts, outputs = np.full(20, 8000), np.full(20, 50)  # an 8k-token prefill takes far over 10 ms
    with caplog.at_level(logging.WARNING):
        strict = slo_capacity(profile, prompts, outputs, 0.01, 0.05, requests=60, tolerance=0.1)
    assert "no replica meets" in caplog.text
    loose = slo_capacity(profile, prompts, outputs, 100.0, 100.0, requests=60, tolerance=0.1)
    assert 0 < strict <= loose * 1.1


def test_the_seed_draws_other_arrivals_and_so_another_measurement():
    """A load table's --model-seed reaches the engine runs it is measured on: near capacity, another seed's Poisson
    arrivals meet the SLO at another attainment; the same seed measures the same."""
    profile = load_profile("llama-3.1-8b-h100")
    prompts, outputs = np.full(20, 400), np.full(20, 80)
    rate = slo_capacity(profile, prompts, outputs, 0.1, 0.05, requests=200, tolerance=0.1)
    at = lambda seed: attainment_at(profile, 1.3 * rate, prompts, outputs, 0.1, 0.05, requests=200, seed=seed)
    assert at(0) == at(0) != at(7)
