"""Engine step time from a batch's composition: a roofline per kernel family plus fitted overheads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.engine.power import clock_within, draw_w
from serving.engine.profile import Profile


@dataclass
class BatchShape:
    """What one forward pass computes, summed over the scheduled sequences."""

    num_seqs: int = 0
    decode_seqs: int = 0
    total_tokens: int = 0  # new tokens through the model this step (prefill chunks + decodes)
    kv_read_tokens: int = 0  # context tokens whose K/V are read by attention
    attention_pairs: float = 0.0  # causal query-key pairs computed by attention

    @classmethod
    def of(cls, sequences) -> BatchShape:
        """The shape of a batch of (new tokens, computed before) pairs, one per scheduled sequence: a decode is one
        token over a cached context; attention computes new x (computed + (new + 1) / 2) causal pairs."""
        num_seqs = decode_seqs = total_tokens = kv_read_tokens = 0
        attention_pairs = 0.0
        for new_tokens, computed_before in sequences:
            num_seqs += 1
            if new_tokens == 1 and computed_before > 0:
                decode_seqs += 1
            total_tokens += new_tokens
            kv_read_tokens += computed_before + new_tokens
            attention_pairs += new_tokens * (computed_before + (new_tokens + 1) / 2)
        return cls(num_seqs, decode_seqs, total_tokens, kv_read_tokens, attention_pairs)

    @property
    def prefill_tokens(self) -> int:
        return self.total_tokens - self.decode_seqs


@dataclass(frozen=True)
class StepTiming:
    duration_s: float  # predicted wall time of the step
    floor_s: float  # physical lower bound: bytes / bandwidth or FLOPs / peak, whichever is larger
    gpu_busy_s: float  # time the GPU executes kernels during the step
    bytes_moved: float  # per GPU: weights and the KV cache read
    flops: float  # per GPU
    written_bytes: float = 0.0  # per GPU: the KV cache the step's new tokens write
    clock: float = 1.0  # SM clock ratio the step ran at (below 1 where the board's power limit held it)
    power_w: float = 0.0  # board power while it ran, where the profile's GPU has a power model
    tensor_active: float = 0.0  # the tensor pipe's and HBM's activity while it ran, as DCGM reads them (with a
    dram_active: float = 0.0  # power model)

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
        self._gemm_flops_per_token = 2.0 * model.active_parameters / tp
        # MoE: a step reads the shared weights and the experts its tokens pick (each of t tokens picks k of E)
        self._expert_bytes = model.expert_parameters * model.dtype_bytes / tp
        self._unpicked = 1.0 - model.experts_per_token / model.experts
        self._attn_flops_per_pair = 4.0 * model.layers * model.attention_heads * model.head_dim / tp
        self._gpu = gpu
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

    def _cost(self, total_tokens, kv_tokens, pairs, num_seqs, allowed_w=None):
        """(duration, GPU-busy, floor, bytes, FLOPs, clock, (tensor, HBM activity)) of steps that push `total_tokens` new tokens through the
        model, read and write `kv_tokens` of K/V, compute `pairs` attention query-key pairs and schedule `num_seqs`
        sequences: scalars or arrays alike (one formula for single steps, decode runs and fluid batches). With a
        power model, the clock is the one at which the step draws no more than `allowed_w(full-clock duration)`,
        by default the board's limit: the clock sustained load settles at; the activity is the step's at that clock
        (zeros without a power model)."""
        eff = self._eff
        weight_bytes, kv_bytes, gemm_flops, attn_flops = self._kernels(total_tokens, kv_tokens, pairs)
        total_bytes = weight_bytes + kv_bytes
        total_flops = gemm_flops + attn_flops
        floor = np.maximum(total_bytes / self._bandwidth, total_flops / self._peak)
        cpu = eff.step_overhead_s + eff.per_seq_overhead_s * num_seqs
        if eff.eager_step_overhead_s:  # steps beyond the CUDA graphs launch their kernels one by one
            cpu = cpu + np.where(np.asarray(total_tokens) > eff.graph_max_tokens, eff.eager_step_overhead_s, 0.0)
        kernels = (weight_bytes, kv_bytes, gemm_flops, attn_flops, total_tokens)
        busy = self._busy(*kernels, 1.0)
        duration = np.maximum(np.maximum(busy + cpu, busy / eff.gpu_busy_fraction), floor)
        clock, use = 1.0, (0.0, 0.0)
        if self._gpu.power_capped:  # the board lowers the SM clock where the step would draw more than allowed
            limit = self._gpu.tdp_w if allowed_w is None else allowed_w(duration)
            clock = clock_within(self._gpu, *self.activity(*kernels[:4], 1.0, duration), limit)
            busy = self._busy(*kernels, clock)
            duration = np.maximum(np.maximum(busy + cpu, busy / eff.gpu_busy_fraction), floor)
            use = self.activity(*kernels[:4], clock, duration)
        return duration, busy, floor, total_bytes, total_flops, clock, use

    def _kernels(self, total_tokens, kv_tokens, pairs):
        """(weight bytes, KV bytes, GEMM FLOPs, attention FLOPs) of a step, per GPU."""
        weight_bytes = self._weight_bytes
        if self._expert_bytes:  # the expected share of experts no token picks is (1 - k / E)^t
            weight_bytes = weight_bytes - self._expert_bytes * self._unpicked ** np.maximum(total_tokens, 1.0)
        gemm_flops = self._gemm_flops_per_token * total_tokens
        return weight_bytes, self._kv_bytes_per_token * kv_tokens, gemm_flops, self._attn_flops_per_pair * pairs

    def activity(self, weight_bytes, kv_bytes, gemm_flops, attn_flops, clock, duration):
        """(tensor pipe, HBM) activity of a step of `duration` at SM clock ratio `clock`, as DCGM reads them: a
        compute-bound kernel family keeps the tensor pipe active a share of its run and brings HBM traffic of its
        own; a memory-bound one uses the tensor pipe only for its FLOPs at the peak rate (docs/vllm-on-h200.md)."""
        eff, gpu, peak = self._eff, self._gpu, self._peak * clock
        tensor_s = dram_s = 0.0
        for data, flops, compute in (
            (weight_bytes, gemm_flops, eff.gemm_compute),
            (kv_bytes, attn_flops, eff.attention_compute),
        ):
            compute_s = flops / (peak * compute)
            bound = compute_s >= data / (self._bandwidth * eff.bandwidth)
            tensor_s = tensor_s + np.where(bound, gpu.compute_tensor_activity * compute_s, flops / peak)
            dram_s = dram_s + np.where(bound, gpu.compute_dram_share * compute_s, 0.0)
        dram_s = dram_s + gpu.memory_dram_activity * (weight_bytes + kv_bytes) / self._bandwidth
        safe = np.maximum(duration, 1e-12)
        return tensor_s / safe, dram_s / safe

    def _busy(self, weight_bytes, kv_bytes, gemm_flops, attn_flops, total_tokens, clock):
        """GPU time of the step's kernels at SM clock ratio `clock`: each kernel family takes the longer of its
        memory traffic and its compute; compute slows with the clock, HBM bandwidth does not."""
        eff, peak = self._eff, self._peak * clock
        gemm = np.maximum(weight_bytes / (self._bandwidth * eff.bandwidth), gemm_flops / (peak * eff.gemm_compute))
        attention = np.maximum(
            kv_bytes / (self._bandwidth * eff.bandwidth), attn_flops / (peak * eff.attention_compute)
        )
        return gemm + attention + self._allreduce_fixed + self._allreduce_per_token * total_tokens

    def timing(self, batch: BatchShape, allowed_w=None) -> StepTiming:
        """One step's timing; `allowed_w(full-clock duration)`: the most it may draw (a `PowerGovernor`'s)."""
        if batch.num_seqs == 0:
            return StepTiming(0.0, 0.0, 0.0, 0.0, 0.0)
        duration, busy, floor, total_bytes, total_flops, clock, (tensor, dram) = self._cost(
            batch.total_tokens,
            batch.kv_read_tokens + batch.total_tokens,
            batch.attention_pairs,
            batch.num_seqs,
            allowed_w,
        )
        written = self._kv_bytes_per_token * batch.total_tokens
        timing = (float(duration), float(floor), float(busy), float(total_bytes), float(total_flops), written)
        if not self._gpu.power_capped:
            return StepTiming(*timing)
        power = float(draw_w(self._gpu, tensor, dram, clock))
        return StepTiming(*timing, float(clock), power, float(tensor), float(dram))

    def duration(self, batch: BatchShape) -> float:
        return self.timing(batch).duration_s

    def decode_run(self, num_seqs: int, kv_read0: float, pairs0: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Durations and GPU-busy times of `steps` consecutive pure-decode steps of `num_seqs` sequences, where
        every sequence's context grows by one token per step (the same formula as `timing`, vectorized)."""
        grow = np.arange(steps, dtype=np.float64) * num_seqs
        duration, busy, *_ = self._cost(num_seqs, kv_read0 + grow + num_seqs, pairs0 + grow, num_seqs)
        return duration, np.broadcast_to(busy, duration.shape)

    def mixed_steps(
        self,
        decode_seqs: np.ndarray,
        context_tokens: np.ndarray,
        prefill_tokens: np.ndarray,
        prompt_tokens: np.ndarray | float = 1.0,
        attended_prompt_tokens: np.ndarray | float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(duration, GPU-busy) of one step per element: `decode_seqs` sequences decoding one token each over
        `context_tokens` of context in all (fractional counts welcome: a fluid model's mean batch), plus a chunk of
        `prefill_tokens` from whole prompts of `prompt_tokens` each (their attention is causal within a prompt).
        Prompts of many lengths: `attended_prompt_tokens` is their token-weighted mean length (sum of squares over
        sum), which sets the chunk's attention work, as a token at position i of its prompt attends i tokens in
        whichever chunk it is computed (the mean length would miss the long prompts' quadratic share). An empty
        step takes no time."""
        decode_seqs, prefill = np.asarray(decode_seqs, dtype=np.float64), np.asarray(prefill_tokens, dtype=np.float64)
        piece = np.minimum(prefill, np.maximum(prompt_tokens, 1.0))
        attended = piece if attended_prompt_tokens is None else np.maximum(attended_prompt_tokens, 1.0)
        total = decode_seqs + prefill
        pairs = context_tokens + decode_seqs + prefill * (attended + 1.0) / 2.0
        seqs = decode_seqs + np.where(prefill > 0, np.maximum(1.0, prefill / np.maximum(piece, 1.0)), 0.0)
        duration, busy, *_ = self._cost(total, context_tokens + decode_seqs + 2.0 * prefill + decode_seqs, pairs, seqs)
        empty = total <= 0
        return np.where(empty, 0.0, duration), np.where(empty, 0.0, busy)
