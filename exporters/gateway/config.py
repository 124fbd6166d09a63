"""The gateway's validated config (`headroom gateway --config F`): listen address, backends, models, admission, tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from serving.common.config import read_yaml, validate_mapping
from serving.common.http.limits import ListenerLimits, TlsFiles
from serving.common.strict import Strict


class GatewayConfigError(ValueError):
    pass


def check_address(address: str) -> str:
    """`host:port` (an IPv6 host in brackets) with a port from 1 to 65535; raises ValueError saying what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise ValueError(f"backend {address!r} is not host:port")
    if host.startswith("[") != host.endswith("]") or any(c.isspace() or c in "/?#@" for c in host):
        raise ValueError(f"backend {address!r}: {host!r} is not a host name or address")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"backend {address!r}: port {port!r} is not a number from 1 to 65535")
    return address


class Backends(Strict):
    """Where the replicas are: a fixed list, a Prometheus file_sd file (re-read when it changes), or the
    EndpointSlices of a Kubernetes Service."""

    static: list[str] = []  # host:port
    file_sd: Path | None = None
    kubernetes_service: str | None = None  # "namespace/name"
    kubernetes_port: str | None = None  # the EndpointSlice port name (default: the first port)
    health_path: str = "/v1/models"  # answers 200 once the replica serves; its body names the models it serves
    health_interval_s: float = Field(2.0, gt=0)
    unhealthy_after: int = Field(2, ge=1)  # consecutive failed checks before a backend is ejected
    healthy_after: int = Field(1, ge=1)  # consecutive passed checks before it is routed to again

    @field_validator("static")
    @classmethod
    def _addresses(cls, static: list[str]) -> list[str]:
        return [check_address(a) for a in static]

    @model_validator(mode="after")
    def _kubernetes_service_form(self):
        if self.kubernetes_service is not None and self.kubernetes_service.count("/") != 1:
            raise ValueError(f"kubernetes_service must be namespace/name, got {self.kubernetes_service!r}")
        return self


class SloThresholds(Strict):
    """Per-request latency thresholds the gateway counts each answered request against (met or missed): the same
    SLO the autoscaler's target holds, so that an SLI needs no histogram bucket at its threshold."""

    ttft_s: float | None = Field(1.0, gt=0)  # client-side time to first token (streamed answers)
    tpot_s: float | None = Field(0.05, gt=0)  # mean time per output token after the first (the autoscaler's itl_s)
    e2e_s: float | None = Field(None, gt=0)  # whole request, streamed or not; none: not counted


class ModelLimits(Strict):
    max_queue: int = Field(256, ge=0)  # requests waiting for a backend slot; beyond it, 429
    queue_timeout_s: float = Field(30.0, gt=0)  # a request waiting longer gets 429 too
    slo: SloThresholds = SloThresholds()


class GatewayConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    metrics_port: int | None = Field(None, ge=0, le=65535)  # /metrics on a listener of its own (then not on `port`)
    tls: TlsFiles | None = None  # HTTPS on `port`, the certificate re-read when its files change
    limits: ListenerLimits = ListenerLimits()  # what one client may send, and how long it may take
    backends: Backends = Backends()
    # models served; requests for any other get 404 before a backend is touched. Empty: the models the backends
    # report on their health path (and, until one has, any)
    models: dict[str, ModelLimits] = {}
    default_limits: ModelLimits = ModelLimits()  # for models learned from the backends
    max_in_flight_per_backend: int = Field(256, ge=1)  # vLLM's max_num_seqs: beyond it requests wait here, not there
    routing: Literal["least_outstanding", "prefix_affinity"] = "least_outstanding"
    prefix_affinity_chars: int = Field(256, ge=1)  # the prompt's first characters that pick a backend
    max_attempts: int = Field(3, ge=1)  # tries on other backends, only before the first byte reaches the client
    connect_timeout_s: float = Field(5.0, gt=0)
    first_byte_timeout_s: float = Field(600.0, gt=0)
    request_timeout_s: float = Field(3600.0, gt=0)
    keys_file: Path | None = None  # YAML {api key: tenant}; none: open mode, every request is tenant "anonymous"
    tenant_label_cap: int = Field(20, ge=1)  # tenants with their own metric label (the busiest); the rest are "other"


def parse_gateway_config(raw, where: str = "gateway config") -> GatewayConfig:
    return validate_mapping(GatewayConfig, {} if raw is None else raw, where, GatewayConfigError)


def load_gateway_config(path: str | Path) -> GatewayConfig:
    path = Path(path)
    raw = read_yaml(path, GatewayConfigError)
    config = parse_gateway_config(raw, str(path))
    relative = lambda p: p if p is None or p.is_absolute() else path.parent / p  # files beside the config
    tls = config.tls and config.tls.model_copy(
        update={"cert_file": relative(config.tls.cert_file), "key_file": relative(config.tls.key_file)}
    )
    return config.model_copy(
        update={
            "keys_file": relative(config.keys_file),
            "tls": tls,
            "backends": config.backends.model_copy(update={"file_sd": relative(config.backends.file_sd)}),
        }
    )
