"""GPU telemetry derived from engine steps, exported with dcgm-exporter's metric names and labels."""

from __future__ import annotations

import hashlib
from collections import deque

from serving.contracts.dcgm_fields import DCGM_LABELS, ENERGY, dcgm_families
from serving.engine.profile import GIB, Profile
from serving.engine.steptime import StepTiming

MIB = 1 << 20
MODEL_NAMES = {
    "H100": "NVIDIA H100 80GB HBM3",
    "H200": "NVIDIA H200",
    "A100-80GB": "NVIDIA A100-SXM4-80GB",
    "L4": "NVIDIA L4",
    "A10G": "NVIDIA A10G",
}


class GpuModel:
    """Activity of a replica's GPUs over a sliding window, with power, energy, temperature and memory."""

    def __init__(self, profile: Profile, now: float, window_s: float = 1.0, driver_reserved_mib: int = 512):
        self.profile = profile
        self.window_s = window_s
        self._steps: deque[tuple[float, float, float, float, float]] = deque()  # end, duration, busy, bytes, flops
        self._last_time = now
        self.energy_mj = 0.0
        self.temperature_c = 32.0
        self.used_blocks = 0
        self.driver_reserved_mib = driver_reserved_mib
        self.xid = 0
        self.loaded_at = now  # weights are resident from then on (the end of the cold start)

    def record_step(self, end: float, timing: StepTiming) -> None:
        self._steps.append((end, timing.duration_s, timing.gpu_busy_s, timing.bytes_moved, timing.flops))

    def activity(self, now: float) -> tuple[float, float, float]:
        """(graphics-engine busy, tensor-pipe active, DRAM active) fractions over the last window."""
        start = now - self.window_s
        while self._steps and self._steps[0][0] < start:
            self._steps.popleft()
        busy = bytes_ = flops = 0.0
        for end, duration, gpu_busy, nbytes, nflops in self._steps:
            share = min(1.0, (end - start) / duration) if duration > 0 else 1.0
            busy += gpu_busy * share
            bytes_ += nbytes * share
            flops += nflops * share
        gpu = self.profile.gpu
        return (
            min(1.0, busy / self.window_s),
            min(1.0, flops / (gpu.peak_flops(self.profile.model.dtype_bytes) * self.window_s)),
            min(1.0, bytes_ / (gpu.bandwidth_bytes_s * self.window_s)),
        )

    def power_w(self, busy: float, tensor: float, dram: float) -> float:
        gpu = self.profile.gpu
        return gpu.idle_power_w + (gpu.tdp_w - gpu.idle_power_w) * min(1.0, 0.4 * busy + 0.3 * tensor + 0.3 * dram)

    def advance(self, now: float) -> dict[str, float]:
        """Integrate energy and temperature up to `now`; returns the current readings."""
        busy, tensor, dram = self.activity(now)
        power = self.power_w(busy, tensor, dram)
        dt = max(0.0, now - self._last_time)
        self._last_time = now
        self.energy_mj += power * dt * 1e3
        gpu = self.profile.gpu
        target = 32.0 + 43.0 * (power - gpu.idle_power_w) / (gpu.tdp_w - gpu.idle_power_w)
        self.temperature_c += (target - self.temperature_c) * min(1.0, dt / 30.0)
        total_mib = gpu.memory_gib * GIB / MIB
        used_mib = 0.0
        if now >= self.loaded_at:
            p = self.profile
            used_mib = (
                p.weights_per_gpu_bytes
                + p.scheduler.runtime_reserve_gib * GIB
                + self.used_blocks * p.kv_block_bytes_per_gpu
            ) / MIB
        return {
            "DCGM_FI_DEV_GPU_UTIL": round(busy * 100),
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE": busy,
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": tensor,
            "DCGM_FI_PROF_DRAM_ACTIVE": dram,
            "DCGM_FI_DEV_FB_USED": round(used_mib),
            "DCGM_FI_DEV_FB_FREE": round(total_mib - used_mib - self.driver_reserved_mib),
            "DCGM_FI_DEV_FB_RESERVED": self.driver_reserved_mib,
            "DCGM_FI_DEV_POWER_USAGE": round(power, 3),
            "DCGM_FI_DEV_GPU_TEMP": round(self.temperature_c),
            "DCGM_FI_DEV_SM_CLOCK": gpu.sm_clock_mhz if busy > 0.01 else 345,
            "DCGM_FI_DEV_MEM_CLOCK": gpu.mem_clock_mhz,
            "DCGM_FI_DEV_XID_ERRORS": self.xid,
        }


def gpu_labels(profile: Profile, hostname: str, index: int, instance: str) -> list[str]:
    """dcgm-exporter's label values for one GPU; the UUID is stable per replica address and index."""
    digest = hashlib.sha1(f"{instance}/{index}".encode()).hexdigest()
    uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return [
        str(index),
        uuid,
        f"00000000:{0x18 + index:02X}:00.0",
        f"nvidia{index}",
        MODEL_NAMES.get(profile.gpu.name, profile.gpu.name),
        hostname,
    ]


class DcgmCollector:
    """Collector (no HTTP): reads a GpuModel at scrape time, one series per GPU of the replica."""

    def __init__(
        self, model: GpuModel, clock, hostname: str, instance: str, extra_labels: dict[str, str] | None = None
    ):
        self.model, self.clock = model, clock
        extra = extra_labels or {}
        self.label_names = DCGM_LABELS + list(extra)
        self.label_sets = [
            gpu_labels(model.profile, hostname, i, instance) + list(extra.values())
            for i in range(model.profile.tensor_parallel)
        ]

    def collect(self):
        readings = {**self.model.advance(self.clock()), ENERGY: self.model.energy_mj}
        yield from dcgm_families(self.label_names, [(labels, readings) for labels in self.label_sets])
