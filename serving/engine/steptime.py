"""Engine step time from a batch's composition: a roofline per kernel family plus fitted overheads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.engine.profile import Profile


@dataclass
class BatchShape:
    """What one forward pass computes, summed over the scheduled sequences."""

    num_seqs: int = 0
    decode_seqs: int = 0
    total_tokens: int = 0  # new tokens through the model this step (prefill chunks + decodes)
    kv_read_tokens: int = 0  # context tokens whose K/V are read by attention
    attention_pairs: float = 0.0  # causal query-key pairs computed by attention

    def add(self, new_tokens: int, computed_before: int) -> None:
        """Account one sequence that runs `new_tokens` on top of `computed_before` cached tokens."""
        self.num_seqs += 1
        if new_tokens == 1 and computed_before > 0:
            self.decode_seqs += 1
        self.total_tokens += new_tokens
        self.kv_read_tokens += computed_before + new_tokens
        self.attention_pairs += new_tokens * (computed_before + (new_tokens + 1) / 2)

    @property
    def prefill_tokens(self) -> int:
        return self.total_tokens - self.decode_seqs


@dataclass(frozen=True)
class StepTiming:
    duration_s: float  # predicted wall time of the step
    floor_s: float  # physical lower bound: bytes / bandwidth or FLOPs / peak, whichever is larger
    gpu_busy_s: float  # time the GPU executes kernels during the step
    bytes_moved: float  # per GPU
    flops: float  # per GPU

    @property
    def busy_fraction(self) -> float:
        return self.gpu_busy_s / self.duration_s if self.duration_s > 0 else 0.0


class StepTimeModel:
    """Predicts step durations for one profile; precomputes the per-profile constants."""

    def __init__(self, profile: Profile):
        model, gpu, tp = profile.model, profile.gpu, profile.tensor_parallel
        eff = profile.efficiency
        self.profile = profile
        self._weight_bytes = model.weight_bytes / tp
        self._kv_bytes_per_token = model.kv_bytes_per_token / tp
        self._gemm_flops_per_token = 2.0 * model.parameters / tp
        self._attn_flops_per_pair = 4.0 * model.layers * model.attention_heads * model.head_dim / tp
        self._bandwidth = gpu.bandwidth_bytes_s
        self._peak = gpu.peak_flops(model.dtype_bytes)
        self._eff = eff
        if tp > 1:
            ring = 2.0 * (tp - 1) / tp
            bus = max(gpu.interconnect_gb_s, 1e-9) * 1e9
            self._allreduce_fixed = 2 * model.layers * eff.allreduce_latency_s
            self._allreduce_per_token = 2 * model.layers * ring * model.hidden_size * model.dtype_bytes / bus
        else:
            self._allreduce_fixed = 0.0
            self._allreduce_per_token = 0.0

    def timing(self, batch: BatchShape) -> StepTiming:
        if batch.num_seqs == 0:
            return StepTiming(0.0, 0.0, 0.0, 0.0, 0.0)
        eff = self._eff
        kv_bytes = self._kv_bytes_per_token * (batch.kv_read_tokens + batch.total_tokens)
        gemm_flops = self._gemm_flops_per_token * batch.total_tokens
        attn_flops = self._attn_flops_per_pair * batch.attention_pairs
        total_bytes = self._weight_bytes + kv_bytes
        total_flops = gemm_flops + attn_flops
        floor = max(total_bytes / self._bandwidth, total_flops / self._peak)

        gemm = max(self._weight_bytes / (self._bandwidth * eff.bandwidth), gemm_flops / (self._peak * eff.gemm_compute))
        attention = max(kv_bytes / (self._bandwidth * eff.bandwidth), attn_flops / (self._peak * eff.attention_compute))
        comm = self._allreduce_fixed + self._allreduce_per_token * batch.total_tokens
        gpu_busy = gemm + attention + comm
        cpu = eff.step_overhead_s + eff.per_seq_overhead_s * batch.num_seqs
        duration = max(gpu_busy + cpu, gpu_busy / eff.gpu_busy_fraction, floor)
        return StepTiming(duration, floor, gpu_busy, total_bytes, total_flops)

    def duration(self, batch: BatchShape) -> float:
        return self.timing(batch).duration_s

    def decode_run(self, num_seqs: int, kv_read0: float, pairs0: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Durations and GPU-busy times of `steps` consecutive pure-decode steps of `num_seqs` sequences, where
        every sequence's context grows by one token per step (the same formula as `timing`, vectorized)."""
        eff = self._eff
        grow = np.arange(steps, dtype=np.float64) * num_seqs
        kv_bytes = self._kv_bytes_per_token * (kv_read0 + grow + num_seqs)
        gemm_flops = self._gemm_flops_per_token * num_seqs
        attn_flops = self._attn_flops_per_pair * (pairs0 + grow)
        floor = np.maximum((self._weight_bytes + kv_bytes) / self._bandwidth, (gemm_flops + attn_flops) / self._peak)
        gemm = max(self._weight_bytes / (self._bandwidth * eff.bandwidth), gemm_flops / (self._peak * eff.gemm_compute))
        attention = np.maximum(kv_bytes / (self._bandwidth * eff.bandwidth), attn_flops / (self._peak * eff.attention_compute))
        busy = gemm + attention + self._allreduce_fixed + self._allreduce_per_token * num_seqs
        cpu = eff.step_overhead_s + eff.per_seq_overhead_s * num_seqs
        duration = np.maximum(np.maximum(busy + cpu, busy / eff.gpu_busy_fraction), floor)
        return duration, busy
