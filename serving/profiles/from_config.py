"""A replica profile for any model: its Hugging Face config.json counted into a model spec (hf_config), on a GPU
of gpus.yaml at a tensor parallelism, with vLLM's server defaults for that GPU class; validated before written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from serving.profiles import build_profile
from serving.profiles.errors import ProfileError
from serving.profiles.hf_config import model_spec

LARGE_GPU_GIB = 70  # vLLM's OpenAI server raises its scheduler defaults on GPUs with at least this much memory
# what vLLM 0.20.2 kept besides weights and KV cache for Qwen3-30B-A3B on an H100 (118,192 KV tokens): an MoE step's
# activations and graphs take more than a dense model's 2 GiB (docs/vllm-on-h200.md)
MOE_RUNTIME_RESERVE_GIB = 4.3


def profile_document(
    config_path: Path,
    gpu: str,
    tensor_parallel: int = 1,
    name: str | None = None,
    model_name: str | None = None,
    max_model_len: int | None = None,
) -> dict:
    """The profile YAML's content; raises ProfileError naming what is wrong (the file, a key, the fit)."""
    config = _read_config(config_path)
    model_name = model_name or config.get("_name_or_path") or config_path.resolve().parent.name
    model = model_spec(config, model_name, max_model_len)
    gpus = yaml.safe_load((Path(__file__).parent / "gpus.yaml").read_text())
    if gpu not in gpus:
        raise ProfileError(f"--gpu: unknown GPU {gpu!r}; known: {', '.join(sorted(gpus))}")
    large = gpus[gpu]["memory_gib"] >= LARGE_GPU_GIB
    moe = model.get("experts", 1) > 1
    slug = re.sub(r"[^a-z0-9.]+", "-", model_name.split("/")[-1].lower()).strip("-")
    document = {
        "name": name or f"{slug}-{gpu.lower()}" + (f"-tp{tensor_parallel}" if tensor_parallel > 1 else ""),
        "model": model,
        "gpu": gpu,
        "tensor_parallel": tensor_parallel,
        # MoE layers launch many kernels a step: their set carries the launch cost measured on Qwen3-30B-A3B
        "efficiency": "vllm-v1-moe" if moe else "vllm-v1",
        "scheduler": {
            "max_num_seqs": 1024 if large else 256,
            "max_num_batched_tokens": 8192 if large else 2048,
            "gpu_memory_utilization": 0.9,
            "runtime_reserve_gib": (MOE_RUNTIME_RESERVE_GIB if moe else 2.0) if large else 1.5,
        },
        "sources": [
            f"architecture: {config_path.name} of {model_name}, counted by serving/profiles/hf_config.py",
            f"GPU: gpus.yaml ({gpu}); scheduler limits: vLLM V1's OpenAI-server defaults for this GPU class",
        ],
    }
    build_profile(dict(document), str(config_path))  # the same checks as loading it: fields, fit in memory
    return document


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except OSError as err:
        raise ProfileError(f"--config: cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ProfileError(f"--config: {path} is not JSON: {err}") from None
    if not isinstance(config, dict):
        raise ProfileError(f"--config: {path} holds no JSON object")
    return config
