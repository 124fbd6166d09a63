"""A kustomize overlay for one profile: vLLM's arguments, GPU count, startup budget, drain and grace period all
derived from the profile, so that the manifests run what the engine model and the autoscaler assume. Pure: text out;
`headroom k8s render` writes it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from serving.engine.profile import Profile
from serving.engine.steptime import BatchShape, StepTimeModel

BASE_DIR = Path(__file__).parent / "base"
DCGM_DIR = Path(__file__).resolve().parents[2] / "exporters" / "dcgm"
PORT = 8000
ENGINE_START_S = 97.0  # vLLM 0.20.2, 8B on one H200, process start to ready without a weight download (measured)
WEIGHT_READ_BYTES_S = 250e6  # a network volume's read rate for the weights: slow on purpose (short budgets lose pods)
STARTUP_MARGIN = 1.5
PROBE_PERIOD_S = 10
ENDPOINT_DRAIN_S = 15  # for endpoints to stop routing to a terminating pod (EndpointSlice propagation, the gateway)


@dataclass(frozen=True)
class ServingSettings:
    namespace: str = "headroom"
    max_output_tokens: int = 4096  # the longest answer a drain waits for
    # the label kube-prometheus-stack's Prometheus selects monitors and rules by: one setting for every object
    release: str = "kube-prometheus-stack"


def vllm_args(profile: Profile) -> list[str]:
    """The server's arguments: the model and exactly the scheduler limits the engine model assumes."""
    s = profile.scheduler
    return ["--model", profile.model.name, "--served-model-name", profile.model.name,
            "--tensor-parallel-size", str(profile.tensor_parallel), "--max-model-len", str(profile.model.max_model_len),
            "--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}", "--max-num-seqs", str(s.max_num_seqs),
            "--max-num-batched-tokens", str(s.max_num_batched_tokens), "--port", str(PORT)]


def cold_start_s(profile: Profile) -> float:
    """Process start to ready: the measured engine start plus reading every GPU's share of the weights."""
    return ENGINE_START_S + profile.model.weight_bytes / WEIGHT_READ_BYTES_S


def startup_failure_threshold(profile: Profile) -> int:
    return math.ceil(STARTUP_MARGIN * cold_start_s(profile) / PROBE_PERIOD_S)


def worst_step_s(profile: Profile) -> float:
    """The slowest step a decoding request sees: the batch at its sequence limit, a full prefill chunk beside it and
    the KV cache full (the engine model's step time)."""
    s = profile.scheduler
    decodes = min(s.max_num_seqs - 1, s.max_num_batched_tokens - 1)
    chunk = s.max_num_batched_tokens - decodes
    context = profile.kv_capacity_tokens
    batch = BatchShape(num_seqs=decodes + 1, decode_seqs=decodes, total_tokens=decodes + chunk,
                       kv_read_tokens=context, attention_pairs=context + chunk * chunk / 2)
    return StepTimeModel(profile).duration(batch)


def answer_drain_s(profile: Profile, settings: ServingSettings) -> int:
    return math.ceil(settings.max_output_tokens * worst_step_s(profile))


def prestop_script(profile: Profile, settings: ServingSettings) -> str:
    """Wait for the endpoints to stop routing here, then until the server holds no request (or the longest answer's
    time has passed); vLLM then gets SIGTERM with nothing in flight."""
    return "\n".join([
        "import time, urllib.request",
        f"time.sleep({ENDPOINT_DRAIN_S})",
        f"deadline = time.time() + {answer_drain_s(profile, settings)}",
        "while time.time() < deadline:",
        "    try:",
        f"        text = urllib.request.urlopen('http://127.0.0.1:{PORT}/metrics', timeout=5).read().decode()",
        "    except OSError:",
        "        break",
        "    held = sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()",
        "               if line.startswith(('vllm:num_requests_running', 'vllm:num_requests_waiting')))",
        "    if held == 0:",
        "        break",
        "    time.sleep(2)",
    ])


def grace_period_s(profile: Profile, settings: ServingSettings) -> int:
    return ENDPOINT_DRAIN_S + answer_drain_s(profile, settings) + 30  # 30 s for vLLM's own shutdown


def deployment_patch(profile: Profile, settings: ServingSettings) -> dict:
    gpus = profile.gpus
    container = {
        "name": "vllm", "args": vllm_args(profile),
        "resources": {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}},
        "startupProbe": {"failureThreshold": startup_failure_threshold(profile), "periodSeconds": PROBE_PERIOD_S},
        "lifecycle": {"preStop": {"exec": {"command": ["python3", "-c", prestop_script(profile, settings)]}}},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vllm"},
            "spec": {"template": {"spec": {"terminationGracePeriodSeconds": grace_period_s(profile, settings),
                                           "containers": [container]}}}}


def overlay_files(profile: Profile, out_dir: Path, settings: ServingSettings = ServingSettings(),
                  monitoring: dict[str, str] | None = None) -> dict[str, str]:
    """{file name: text} of an overlay in `out_dir` over the shipped bases and dcgm-exporter; `monitoring` files
    (the mixin's PrometheusRule and dashboard ConfigMaps, built for this SLO by the caller) join its resources."""
    bases = [os.path.relpath(BASE_DIR / name, out_dir) for name in ("vllm", "gateway", "autoscaler")]
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "namespace": settings.namespace,
                     "resources": [*bases, os.path.relpath(DCGM_DIR, out_dir), *sorted(monitoring or {})],
                     "labels": [{"pairs": {"headroom.dev/profile": profile.name, "release": settings.release},
                                 "includeSelectors": False}],
                     "patches": [{"path": "vllm-deployment.yaml"}]}
    header = (f"# `headroom k8s render --profile {profile.name}` wrote this overlay: the profile is its one source; "
              "render again rather than edit\n")
    dump = lambda doc: header + yaml.safe_dump(doc, sort_keys=False, width=120)
    return {"kustomization.yaml": dump(kustomization), "vllm-deployment.yaml": dump(deployment_patch(profile, settings)),
            **{name: header + text for name, text in (monitoring or {}).items()}}
