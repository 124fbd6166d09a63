"""`autoscaler.yaml`: one validated object for `headroom autoscale` (Prometheus, the loop, leader election, metrics,
and the targets, each with its SLO, bounds, GPU, price, capacity and actuator). Errors name the key and the value."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from autoscaler import defaults
from autoscaler.sources.prometheus import PrometheusSourceConfig
from serving.common.config import read_yaml, validate_mapping
from serving.common.strict import Strict


class ConfigError(ValueError):
    pass


class Slo(Strict):
    ttft_s: float = Field(defaults.SLO_TTFT_S, gt=0)
    itl_s: float = Field(defaults.SLO_ITL_S, gt=0)


class Capacity(Strict):
    """One of: a fixed figure; a capacity file from `headroom loadtest sweep`; the engine model for a length mix."""

    rps: float | None = Field(None, gt=0)
    file: Path | None = None
    profile: str | None = None
    prompt_tokens: float = Field(1000.0, gt=0)
    output_tokens: float = Field(200.0, gt=0)

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("rps", "file", "profile") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of rps, file or profile (got {', '.join(given) or 'none'})")
        return self


class ActuatorConfig(Strict):
    kind: Literal["kubernetes", "local", "dry-run", "metric"] = "dry-run"
    namespace: str | None = None
    workload: str | None = None
    workload_kind: Literal["Deployment", "StatefulSet"] = "Deployment"

    @model_validator(mode="after")
    def _kubernetes_needs_a_workload(self):
        if self.kind == "kubernetes" and not (self.namespace and self.workload):
            raise ValueError("a kubernetes actuator needs namespace and workload")
        return self


class TargetConfig(Strict):
    name: str = Field(min_length=1, description="the value of the source's target label (e.g. model_name)")
    slo: Slo = Field(default_factory=Slo)
    min_replicas: int = Field(defaults.MIN_REPLICAS, ge=0)
    max_replicas: int = Field(defaults.TARGET_MAX_REPLICAS, ge=1)
    cold_start_s: float = Field(defaults.COLD_START_S, ge=0)
    gpu: str = "H100"
    price_per_gpu_hour: float | None = Field(None, ge=0)  # default: the lowest on-demand price listed for `gpu`
    gpus_per_replica: int | None = Field(None, ge=1)  # default: the capacity profile's tensor parallelism, else 1
    capacity: Capacity
    fill: float = Field(defaults.FILL, gt=0, le=1)
    scale_down_window_s: float = Field(
        defaults.SCALE_DOWN_WINDOW_S, ge=0, description="a lower count must be recommended this long first"
    )
    scale_down_window_unproven_s: float = Field(
        defaults.SCALE_DOWN_WINDOW_UNPROVEN_S,
        ge=0,
        description="the same while the forecast has too few scored errors to tell a lull from the end of the load",
    )
    cooldown_s: float = Field(defaults.COOLDOWN_S, ge=0, description="no scale-down this soon after a change")
    rise_memory_s: float = Field(
        defaults.RISE_MEMORY_S, ge=0, description="this long after a scale-up, scale down only with more headroom"
    )
    actuator: ActuatorConfig = Field(default_factory=ActuatorConfig)

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        return self


class LeaderElectionConfig(Strict):
    namespace: str
    name: str = "headroom-autoscaler"
    duration_s: int = Field(15, ge=1)
    identity: str | None = None  # default: the host name


class WarmStartConfig(Strict):
    """History the forecaster learns from before the first decision: a Prometheus range query, or a trace."""

    days: float = Field(7.0, gt=0, description="how far back Prometheus is asked")
    step_s: float = Field(60.0, gt=0, description="resolution of the range query")
    trace: Path | None = Field(None, description="instead of Prometheus: a trace whose per-step rates are replayed")


class MetricsConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)


class AutoscalerConfig(Strict):
    prometheus: PrometheusSourceConfig = Field(default_factory=PrometheusSourceConfig)
    interval_s: float = Field(15.0, gt=0)
    leader_election: LeaderElectionConfig | None = None
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    warm_start: WarmStartConfig | None = Field(default_factory=WarmStartConfig)
    kubeconfig: Path | None = None  # default: in-cluster, then ~/.kube/config
    targets: list[TargetConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self):
        names = [t.name for t in self.targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"target names must be unique: {', '.join(twice)} given twice")
        return self


def load_config(path: str | Path) -> AutoscalerConfig:
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    return parse_config(raw, str(path))


def parse_config(raw, where: str = "config") -> AutoscalerConfig:
    return validate_mapping(AutoscalerConfig, raw, where, ConfigError)
