"""Cells of the capacity table over length mixes, measured on the engine model (seconds each): the I/O-free
but engine-running half of mix_table, kept apart so the policy that looks cells up never imports the simulator."""

from __future__ import annotations

import numpy as np

from autoscaler.capacity.engine_capacity import slo_capacity
from loadgen.workloads.servegen import LengthSampler


def within_model_len(prompts: np.ndarray, outputs: np.ndarray, max_model_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Lengths cut to what the engine accepts (prompt plus output within max_model_len), as clients of a replica
    with a short max_model_len must send them: a log-normal tail would otherwise hold requests vLLM refuses."""
    prompts = np.minimum(prompts, max_model_len - 1)
    return prompts, np.minimum(outputs, max_model_len - prompts)


def engine_cell(profile, slo_ttft_s: float, slo_itl_s: float, sigma: float = 0.6, samples: int = 2000, seed: int = 0):
    """measure(prompt_mean, output_mean) on the engine model: log-normal lengths around the means, a 5% search."""

    def measure(prompt: float, output: float) -> float:
        lengths = LengthSampler.lognormal(prompt, output, sigma=sigma, seed=seed, n=samples)
        prompts, outputs = within_model_len(lengths.prompts, lengths.outputs, profile.model.max_model_len)
        return slo_capacity(profile, prompts, outputs, slo_ttft_s, slo_itl_s, requests=400, seed=seed, tolerance=0.05)

    return measure
