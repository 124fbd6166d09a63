"""Replica profile: model x GPU x tensor parallelism, plus fitted efficiency and overhead parameters."""

from __future__ import annotations

import math

from pydantic import ConfigDict, Field, model_serializer, model_validator

from serving.common.strict import Strict

GIB = 1 << 30
BLOCK_SIZE = 16  # vLLM's default KV block size in tokens


_MEASURED_OVERHEADS = (  # Efficiency's fields from real vLLM (docs/vllm-on-h200.md), left out while unset
    "request_overhead_s",
    "request_token_s",
    "eager_step_overhead_s",
    "frontend_request_s",
    "frontend_token_s",
    "frontend_finish_s",
)


def _without_defaults(model, data, names: tuple[str, ...]):
    """`data` (a model's serialized fields) less the named fields left at their defaults: fields added after
    profiles were first written, so that an unchanged profile serializes, and digests, as it did before them."""
    if isinstance(data, dict):
        for name in names:
            if getattr(model, name) == type(model).model_fields[name].default:
                data.pop(name, None)
    return data


POWER_FIELDS = (
    "compute_power_w",
    "memory_power_w",
    "clock_power_exponent",
    "compute_tensor_activity",
    "memory_dram_activity",
    "compute_dram_share",
    "power_window_s",
)


class _Strict(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True)  # profiles are values: hashable, never edited in place


class ModelSpec(_Strict):
    """Architecture figures of a decoder-only transformer (from its HF config.json)."""

    name: str
    parameters: float = Field(gt=0, description="total parameter count")
    layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    dtype_bytes: float = Field(gt=0, description="bytes per weight (2 for bf16, 1 for fp8)")
    kv_dtype_bytes: float = Field(2, gt=0, description="bytes per KV-cache element")
    max_model_len: int = Field(gt=0)
    experts: int = Field(1, ge=1, description="routed experts per MoE layer (1: a dense model)")
    experts_per_token: int = Field(1, ge=1, description="routed experts each token runs through")
    expert_parameters: float = Field(0, ge=0, description="parameters of every routed expert of every layer together")
    source: str = ""

    @model_validator(mode="after")
    def _experts_fit(self) -> ModelSpec:
        if self.experts_per_token > self.experts:
            raise ValueError(f"experts_per_token {self.experts_per_token} exceeds experts {self.experts}")
        if self.expert_parameters >= self.parameters:
            raise ValueError(
                f"expert_parameters {self.expert_parameters:g} must be below parameters {self.parameters:g}"
            )
        return self

    @model_serializer(mode="wrap")
    def _dense_without_expert_fields(self, handler):
        """A dense model serializes as it did before experts were modelled, so that the digests its load tables,
        capacities and shipped capacity atlases are keyed by still match."""
        data = handler(self)
        if self.experts == 1 and isinstance(data, dict):
            for key in ("experts", "experts_per_token", "expert_parameters"):
                data.pop(key, None)
        return data

    @property
    def active_parameters(self) -> float:
        """Parameters one token runs through: all of a dense model's; an MoE model's but its unpicked experts."""
        if self.experts == 1:
            return self.parameters
        return self.parameters - self.expert_parameters * (1 - self.experts_per_token / self.experts)

    @property
    def weight_bytes(self) -> float:
        return self.parameters * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V for every layer: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.kv_dtype_bytes


class GpuSpec(_Strict):
    """Datasheet figures of one GPU (../shared/data/reference/gpus.csv)."""

    name: str
    memory_gib: float = Field(gt=0)
    hbm_bandwidth_tb_s: float = Field(gt=0)
    dense_bf16_tflops: float = Field(gt=0)
    idle_power_w: float = Field(gt=0)
    tdp_w: float = Field(gt=0)
    sm_clock_mhz: int = Field(gt=0)
    mem_clock_mhz: int = Field(gt=0)
    interconnect_gb_s: float = Field(0, ge=0, description="per-GPU all-reduce bus bandwidth (NVLink), 0 if none")
    compute_power_w: float = Field(
        0,
        ge=0,
        description="power over idle of the tensor cores fully busy at the full SM clock; 0: no power cap modelled "
        "(measured on real vLLM: docs/vllm-on-h200.md)",
    )
    memory_power_w: float = Field(0, ge=0, description="power over idle of HBM read at its full bandwidth")
    clock_power_exponent: float = Field(
        1.0, gt=0, description="the compute power at SM clock ratio s is compute_power_w x use x s^exponent"
    )
    compute_tensor_activity: float = Field(
        1.0,
        gt=0,
        description="the tensor pipe's activity (as DCGM reads it) over a compute-bound kernel's run; a "
        "memory-bound kernel's is its FLOPs at the peak rate",
    )
    memory_dram_activity: float = Field(
        1.0, gt=0, description="HBM's activity (as DCGM reads it) per byte of weights and KV cache at full bandwidth"
    )
    compute_dram_share: float = Field(
        0,
        ge=0,
        description="HBM's activity over a compute-bound kernel's run (its tiles and activations), beyond the "
        "weights and KV cache the model counts",
    )
    power_window_s: float = Field(
        0.5, gt=0, description="how long the board's power limiter averages: a burst shorter than it may draw more"
    )
    source: str = ""

    @model_serializer(mode="wrap")
    def _without_unset_power(self, handler):
        """Without a power model, the spec serializes as it did before one was modelled (digests stay)."""
        return _without_defaults(self, handler(self), POWER_FIELDS)

    @property
    def power_capped(self) -> bool:
        return self.compute_power_w > 0

    @property
    def bandwidth_bytes_s(self) -> float:
        return self.hbm_bandwidth_tb_s * 1e12

    def peak_flops(self, dtype_bytes: float) -> float:
        """Dense tensor throughput; fp8 runs twice as fast as bf16 on Hopper and later."""
        return self.dense_bf16_tflops * 1e12 * (2.0 if dtype_bytes <= 1 else 1.0)


class Efficiency(_Strict):
    """Fitted parameters: how far real vLLM runs from the hardware floor (see bench/fidelity)."""

    bandwidth: float = Field(gt=0, le=1, description="achieved fraction of HBM bandwidth")
    gemm_compute: float = Field(gt=0, le=1, description="achieved fraction of peak FLOP/s in GEMMs")
    attention_compute: float = Field(gt=0, le=1, description="achieved fraction of peak FLOP/s in attention")
    step_overhead_s: float = Field(ge=0, description="fixed CPU and launch cost of one engine step")
    per_seq_overhead_s: float = Field(
        ge=0, description="CPU cost per scheduled sequence (scheduling, sampling, detokenizing)"
    )
    allreduce_latency_s: float = Field(ge=0, description="latency of one tensor-parallel all-reduce")
    gpu_busy_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="share of a step the GPU is busy; <1 models releases whose CPU work did not overlap",
    )
    request_overhead_s: float = Field(
        0.0,
        ge=0,
        description="the server's fixed cost of a request outside the engine's steps: HTTP, tokenization and the "
        "hand-off to the engine core before it can be scheduled (measured on real vLLM: docs/vllm-on-h200.md)",
    )
    request_token_s: float = Field(
        0.0,
        ge=0,
        description="the server's further cost per prompt token before the engine can schedule a request: the "
        "prompt's JSON, its tokenization and its KV blocks' hashes (measured on real vLLM: docs/vllm-on-h200.md)",
    )
    eager_step_overhead_s: float = Field(
        0.0,
        ge=0,
        description="the extra launch cost of a step with more tokens than vLLM captures in CUDA graphs "
        "(graph_max_tokens): its kernels are launched one by one (measured on real vLLM: docs/vllm-on-h200.md)",
    )
    graph_max_tokens: int = Field(512, gt=0, description="vLLM's largest CUDA graph capture size")
    frontend_request_s: float = Field(
        0.0,
        ge=0,
        description="the API server's own time per request (parsing, tokenizing, handing it to the engine core), "
        "spent by its one worker in turn with the outputs it streams (serving/engine/frontend.py)",
    )
    frontend_token_s: float = Field(
        0.0, ge=0, description="the API server's time per output token it detokenizes and streams to a client"
    )
    frontend_finish_s: float = Field(
        0.0, ge=0, description="the API server's time to end a request's stream (final chunk, usage, clean-up)"
    )
    source: str = ""

    def request_latency_s(self, prompt_tokens: float) -> float:
        """How long a request of `prompt_tokens` takes outside the engine's steps before it can be scheduled."""
        return self.request_overhead_s + self.request_token_s * prompt_tokens

    @model_serializer(mode="wrap")
    def _without_unset_overheads(self, handler):
        """Without the overheads measured on real vLLM, the set serializes as it did before they were modelled (the
        digests of load tables and shipped capacity atlases stay)."""
        data = _without_defaults(self, handler(self), _MEASURED_OVERHEADS)
        if isinstance(data, dict) and self.eager_step_overhead_s == 0:
            data.pop("graph_max_tokens", None)  # says nothing without the cost it bounds
        return data


class SchedulerConfig(_Strict):
    """vLLM engine arguments that shape scheduling (defaults: V1 OpenAI server)."""

    max_num_seqs: int = Field(256, gt=0)
    max_num_batched_tokens: int = Field(8192, gt=0)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    enable_chunked_prefill: bool = True
    enable_prefix_caching: bool = True
    runtime_reserve_gib: float = Field(3.0, ge=0, description="activations, CUDA graphs and non-torch memory per GPU")
    async_scheduling: bool = Field(
        False,
        description="vLLM chooses each step while the one before it runs (on by default since 0.11; the benchmark "
        "harness models it, docs/vllm-on-h200.md)",
    )

    @model_serializer(mode="wrap")
    def _without_sync_default(self, handler):
        """Off, the config serializes as it did before it was modelled (digests of load tables and atlases stay)."""
        return _without_defaults(self, handler(self), ("async_scheduling",))


class Profile(_Strict):
    """One deployable replica: what the engine model needs to predict vLLM's behaviour."""

    name: str
    model: ModelSpec
    gpu: GpuSpec
    tensor_parallel: int = Field(1, gt=0)
    efficiency: Efficiency
    scheduler: SchedulerConfig = SchedulerConfig()
    sources: list[str] = []

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Profile:
        if self.num_gpu_blocks <= 0:
            raise ValueError(
                f"profile {self.name!r}: weights ({self.weights_per_gpu_bytes / GIB:.1f} GiB per GPU) leave no KV cache "
                f"in {self.gpu.memory_gib} GiB x gpu_memory_utilization {self.scheduler.gpu_memory_utilization}"
            )
        if self.model.max_model_len > self.kv_capacity_tokens:
            raise ValueError(
                f"profile {self.name!r}: max_model_len {self.model.max_model_len} exceeds the KV cache "
                f"({self.kv_capacity_tokens} tokens); lower max_model_len as vLLM would require"
            )
        return self

    @property
    def weights_per_gpu_bytes(self) -> float:
        return self.model.weight_bytes / self.tensor_parallel

    @property
    def kv_block_bytes_per_gpu(self) -> float:
        return BLOCK_SIZE * self.model.kv_bytes_per_token / self.tensor_parallel

    @property
    def num_gpu_blocks(self) -> int:
        """KV blocks as vLLM sizes them: utilization x memory, minus weights and runtime reserve."""
        budget = (
            self.scheduler.gpu_memory_utilization * self.gpu.memory_gib * GIB
            - self.weights_per_gpu_bytes
            - self.scheduler.runtime_reserve_gib * GIB
        )
        return max(0, math.floor(budget / self.kv_block_bytes_per_gpu))

    @property
    def kv_capacity_tokens(self) -> int:
        return self.num_gpu_blocks * BLOCK_SIZE

    @property
    def gpus(self) -> int:
        return self.tensor_parallel

    def with_changes(self, **changes) -> Profile:
        """A copy with fields replaced (nested models by dict), validated again."""
        data = self.model_dump()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return Profile.model_validate(data)
