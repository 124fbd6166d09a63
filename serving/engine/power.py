"""The board's power limit: the SM clock a step runs at, from the power it would draw and the power drawn lately."""

from __future__ import annotations

import math

import numpy as np

from serving.engine.profile import GpuSpec

# the lowest SM clock ratio the model lets a capped board run at: under vLLM the H100 read no lower than 0.67 of its
# 1,980 MHz, the H200 0.69
MIN_CLOCK_RATIO = 0.6


def draw_w(gpu: GpuSpec, tensor_use, dram_use, clock):
    """Board power at SM clock ratio `clock` with the tensor pipe active `tensor_use` of the clock's cycles and HBM
    active `dram_use` of the time, both as DCGM reads them (the fit of the H200's samples: docs/vllm-on-h200.md)."""
    return (
        gpu.idle_power_w
        + gpu.compute_power_w * tensor_use * clock**gpu.clock_power_exponent
        + (gpu.memory_power_w * dram_use)
    )


def clock_within(gpu: GpuSpec, tensor_use, dram_use, allowed_w):
    """The SM clock ratio at which a step that at full clock keeps the tensor pipe `tensor_use` and HBM `dram_use`
    active draws no more than `allowed_w` (scalars or arrays). A compute-bound step slowed to clock s keeps its
    tensor pipe as busy per cycle, so its compute power falls as s^exponent; its memory power is priced at full
    clock."""
    spare_w = np.maximum(allowed_w - gpu.idle_power_w - gpu.memory_power_w * dram_use, 0.0)
    ratio = spare_w / np.maximum(gpu.compute_power_w * tensor_use, 1e-12)
    return np.clip(ratio ** (1.0 / gpu.clock_power_exponent), MIN_CLOCK_RATIO, 1.0)


class PowerGovernor:
    """The board's running power average, as its limiter keeps it: a step may draw more than the limit while the
    average stays within it, so a burst after idle runs at the full clock and sustained load at the capped one."""

    def __init__(self, gpu: GpuSpec):
        # the limiter holds a running average, not every instant, to the limit: a lone prefill after idle keeps the
        # full clock (docs/vllm-on-h200.md)
        self.gpu, self.window_s = gpu, gpu.power_window_s
        self.average_w = gpu.idle_power_w
        self.at = 0.0  # when the last step ended

    def allowed_w(self, at: float, duration_s: float) -> float:
        """The most a step of `duration_s` starting at `at` may draw and leave the average within the limit."""
        self._idle_until(at)
        keep = math.exp(-duration_s / self.window_s)
        return (self.gpu.tdp_w - self.average_w * keep) / max(1.0 - keep, 1e-12)

    def record(self, at: float, duration_s: float, power_w: float) -> None:
        """A step of `duration_s` from `at` that drew `power_w`."""
        self._idle_until(at)
        self.average_w = power_w + (self.average_w - power_w) * math.exp(-duration_s / self.window_s)
        self.at = at + duration_s

    def _idle_until(self, at: float) -> None:
        if at > self.at:
            idle = self.gpu.idle_power_w
            self.average_w = idle + (self.average_w - idle) * math.exp(-(at - self.at) / self.window_s)
            self.at = at
