"""A kustomize overlay for one profile: vLLM's arguments, GPU count, startup budget, drain and grace period all
derived from the profile, so that the manifests run what the engine model and the autoscaler assume. Pure: text out;
`headroom k8s render` writes it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from serving.engine.profile import Profile
from serving.engine.steptime import BatchShape, StepTimeModel

BASE_DIR = Path(__file__).parent / "base"
PORT = 8000
ENGINE_START_S = 97.0  # vLLM 0.20.2, 8B on one H200, process start to ready without a weight download (measured)
WEIGHT_READ_BYTES_S = 250e6  # a network volume's read rate for the weights: slow on purpose (short budgets lose pods)
STARTUP_MARGIN = 1.5
PROBE_PERIOD_S = 10
ENDPOINT_DRAIN_S = 15  # for endpoints to stop routing to a terminating pod (EndpointSlice propagation, the gateway)


COMPONENTS_DIR = Path(__file__).parent / "components"
GATEWAY_METRICS_PORT = 9100
AUTOSCALER_METRICS_PORT = 9464
KEYS_FILE = "/etc/headroom-keys/keys.yaml"  # where the gateway's Deployment mounts the keys Secret
KEYS_NAME = "gateway-keys.yaml"  # the keys file in an overlay, when `render --keys-file` put it there


@dataclass(frozen=True)
class ServingSettings:
    namespace: str = "headroom"
    max_output_tokens: int = 4096  # the longest answer a drain waits for
    # the label kube-prometheus-stack's Prometheus selects monitors and rules by: one setting for every object
    release: str = "kube-prometheus-stack"
    slo_ttft_s: float = 1.0  # the autoscaler's target, the gateway's SLI and the alerts hold the same SLO
    slo_itl_s: float = 0.05
    min_replicas: int = 1
    max_replicas: int = 8
    prometheus_url: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    price_per_gpu_hour: float | None = None  # none: the lowest on-demand price listed for the profile's GPU
    # headroom: the autoscaler writes the scale subresource; keda: it exports its count for a KEDA ScaledObject
    scaler: Literal["headroom", "keda"] = "headroom"

    def __post_init__(self):
        if not (self.slo_ttft_s > 0 and self.slo_itl_s > 0):
            raise ValueError(f"the SLO's TTFT and ITL must be positive, got {self.slo_ttft_s:g} and {self.slo_itl_s:g}")
        if self.max_output_tokens < 1:
            raise ValueError(f"max output tokens must be at least 1, got {self.max_output_tokens}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(
                f"replica bounds must satisfy 0 <= min <= max and max >= 1, got min {self.min_replicas} "
                f"and max {self.max_replicas}"
            )
        if self.scaler not in ("headroom", "keda"):
            raise ValueError(f"the scaler must be headroom or keda, got {self.scaler!r}")


def vllm_args(profile: Profile) -> list[str]:
    """The server's arguments: the model and exactly the scheduler limits the engine model assumes."""
    s = profile.scheduler
    return [
        "--model",
        profile.model.name,
        "--served-model-name",
        profile.model.name,
        "--tensor-parallel-size",
        str(profile.tensor_parallel),
        "--max-model-len",
        str(profile.model.max_model_len),
        "--gpu-memory-utilization",
        f"{s.gpu_memory_utilization:g}",
        "--max-num-seqs",
        str(s.max_num_seqs),
        "--max-num-batched-tokens",
        str(s.max_num_batched_tokens),
        "--port",
        str(PORT),
    ]


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
    batch = BatchShape(
        num_seqs=decodes + 1,
        decode_seqs=decodes,
        total_tokens=decodes + chunk,
        kv_read_tokens=context,
        attention_pairs=context + chunk * chunk / 2,
    )
    return StepTimeModel(profile).duration(batch)


def answer_drain_s(profile: Profile, settings: ServingSettings) -> int:
    return math.ceil(settings.max_output_tokens * worst_step_s(profile))


def prestop_script(
    profile: Profile, settings: ServingSettings, port: int = PORT, endpoint_drain_s: float = ENDPOINT_DRAIN_S
) -> str:
    """Wait for the endpoints to stop routing here, then until the server holds no request (or the longest answer's
    time has passed); vLLM then gets SIGTERM with nothing in flight. Gauges are matched by their exact name (vLLM
    also exports vllm:num_requests_waiting_by_reason)."""
    return "\n".join(
        [
            "import time, urllib.request",
            f"time.sleep({endpoint_drain_s})",
            f"deadline = time.time() + {answer_drain_s(profile, settings)}",
            "held_by = ('vllm:num_requests_running', 'vllm:num_requests_waiting')",
            "while time.time() < deadline:",
            "    try:",
            f"        text = urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode()",
            "    except OSError:",
            "        break",
            "    held = sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()",
            "               if line.split('{', 1)[0].split(' ', 1)[0] in held_by)",
            "    if held == 0:",
            "        break",
            "    time.sleep(2)",
        ]
    )


def grace_period_s(profile: Profile, settings: ServingSettings) -> int:
    return ENDPOINT_DRAIN_S + answer_drain_s(profile, settings) + 30  # 30 s for vLLM's own shutdown


def deployment_patch(profile: Profile, settings: ServingSettings) -> dict:
    gpus = profile.gpus
    container = {
        "name": "vllm",
        "args": vllm_args(profile),
        "resources": {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}},
        "startupProbe": {"failureThreshold": startup_failure_threshold(profile), "periodSeconds": PROBE_PERIOD_S},
        "lifecycle": {"preStop": {"exec": {"command": ["python3", "-c", prestop_script(profile, settings)]}}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm"},
        "spec": {
            "template": {
                "spec": {"terminationGracePeriodSeconds": grace_period_s(profile, settings), "containers": [container]}
            }
        },
    }


def gateway_config(profile: Profile, settings: ServingSettings) -> dict:
    """The gateway's config: the vLLM Service's EndpointSlices, the model's SLO for its SLI counts, and no more
    requests in flight per backend than vLLM's sequence limit (beyond it they wait in the gateway's queue)."""
    return {
        "host": "0.0.0.0",
        "port": 8080,
        "metrics_port": GATEWAY_METRICS_PORT,
        "backends": {
            "kubernetes_service": f"{settings.namespace}/vllm",
            "kubernetes_port": "http",
            "health_path": "/v1/models",
        },
        "models": {profile.model.name: {"slo": {"ttft_s": settings.slo_ttft_s, "tpot_s": settings.slo_itl_s}}},
        "max_in_flight_per_backend": profile.scheduler.max_num_seqs,
        "keys_file": KEYS_FILE,
    }


def autoscaler_config(profile: Profile, settings: ServingSettings) -> dict:
    """The autoscaler's config: one target for the model, its SLO, bounds, cold start and GPU from the profile; the
    namespace's vLLM Deployment and Lease; vLLM's metrics from this namespace only."""
    kind = "kubernetes" if settings.scaler == "headroom" else "metric"
    target = {
        "name": profile.model.name,
        "slo": {"ttft_s": settings.slo_ttft_s, "itl_s": settings.slo_itl_s},
        "min_replicas": settings.min_replicas,
        "max_replicas": settings.max_replicas,
        "cold_start_s": round(cold_start_s(profile)),
        "gpu": profile.gpu.name,
        **({} if settings.price_per_gpu_hour is None else {"price_per_gpu_hour": settings.price_per_gpu_hour}),
        "capacity": {"profile": profile.name},
        "actuator": {"kind": kind, "namespace": settings.namespace, "workload": "vllm"},
    }
    return {
        "prometheus": {"url": settings.prometheus_url, "selector": f'namespace="{settings.namespace}"'},
        "interval_s": 15,
        "leader_election": {"namespace": settings.namespace, "name": "headroom-autoscaler"},
        "metrics": {"host": "0.0.0.0", "port": AUTOSCALER_METRICS_PORT},
        "targets": [target],
    }


class _BlockDumper(yaml.SafeDumper):
    """YAML with multi-line strings (a ConfigMap's embedded config) as literal blocks, readable in the overlay."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def dump_yaml(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=120)


def config_map_patch(name: str, key: str, config: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {key: yaml.safe_dump(config, sort_keys=False, width=120)},
    }


def scaled_object(profile: Profile, settings: ServingSettings) -> dict:
    """KEDA scales vLLM to the count the leading autoscaler exports: with an AverageValue target of 1 per replica,
    the HPA KEDA drives asks for exactly that count."""
    desired = (
        f'max(headroom_autoscaler_desired_replicas{{namespace="{settings.namespace}",target="{profile.model.name}"}}'
        f' and on (instance) headroom_autoscaler_leader{{namespace="{settings.namespace}"}} == 1)'
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "vllm"},
        "spec": {
            "scaleTargetRef": {"name": "vllm"},
            "minReplicaCount": settings.min_replicas,
            "maxReplicaCount": settings.max_replicas,
            "pollingInterval": 15,
            # the autoscaler already holds scale-downs (windows, cooldown): the HPA adds no window of its own
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {"serverAddress": settings.prometheus_url, "query": desired, "threshold": "1"},
                }
            ],
        },
    }


def overlay_files(
    profile: Profile,
    out_dir: Path,
    settings: ServingSettings = ServingSettings(),
    slo_rule: str | None = None,
    keys_file: str | None = None,
) -> dict[str, str]:
    """{file name: text} of an overlay in `out_dir` over the shipped bases; `slo_rule` (the mixin's PrometheusRule
    built for this SLO by the caller) patches base/monitoring's, so the alerts burn on the model's thresholds;
    `keys_file` (in the overlay) becomes the gateway's keys Secret, its name hashed so that new keys roll the pods."""
    bases = [os.path.relpath(BASE_DIR / name, out_dir) for name in ("vllm", "gateway", "autoscaler", "monitoring")]
    keda = settings.scaler == "keda"
    patched = {
        "vllm-deployment.yaml": deployment_patch(profile, settings),
        "gateway-config.yaml": config_map_patch("headroom-gateway", "gateway.yaml", gateway_config(profile, settings)),
        "autoscaler-config.yaml": config_map_patch(
            "headroom-autoscaler", "autoscaler.yaml", autoscaler_config(profile, settings)
        ),
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": settings.namespace}}
    added = {"namespace.yaml": namespace, **({"scaled-object.yaml": scaled_object(profile, settings)} if keda else {})}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": settings.namespace,
        "resources": [*bases, *added],
        **({"components": [os.path.relpath(COMPONENTS_DIR / "metric-mode", out_dir)]} if keda else {}),
        **(
            {"secretGenerator": [{"name": "headroom-gateway-keys", "files": [f"keys.yaml={keys_file}"]}]}
            if keys_file
            else {}
        ),
        "labels": [
            {"pairs": {"headroom.dev/profile": profile.name, "release": settings.release}, "includeSelectors": False}
        ],
        "patches": [{"path": name} for name in [*patched, *(["prometheus-rule.yaml"] if slo_rule else [])]],
    }
    command = f"headroom k8s render --profile {profile.name}" + (" --scaler keda" if keda else "")
    header = f"# `{command}` wrote this overlay: the profile is its one source; render again rather than edit\n"
    dump = lambda doc: header + dump_yaml(doc)
    rule = {"prometheus-rule.yaml": header + slo_rule} if slo_rule else {}
    return {
        "kustomization.yaml": dump(kustomization),
        **{name: dump(doc) for name, doc in {**patched, **added}.items()},
        **rule,
    }
