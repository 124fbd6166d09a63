"""Capacity cells on the engine model: lengths the engine would refuse never reach it."""

import numpy as np

from autoscaler.capacity.mix_cells import engine_cell, within_model_len
from serving.profiles import load_profile


def test_lengths_are_cut_to_the_model_length():
    prompts, outputs = within_model_len(np.array([100, 20_000, 16_000]), np.array([50, 500, 900]), 16_384)
    assert prompts.tolist() == [100, 16_383, 16_000] and outputs.tolist() == [50, 1, 384]
    assert (prompts + outputs <= 16_384).all()


def test_a_long_prompt_cell_is_measured_on_a_profile_with_a_short_max_model_len():
    profile = load_profile("llama-3.1-8b-l4")  # max_model_len 16384: the grid's 8192-token mean has a tail beyond it
    capacity = engine_cell(profile, slo_ttft_s=10.0, slo_itl_s=0.2, samples=200)(8192.0, 128.0)
    assert capacity > 0
