"""Run Debian's `prometheus` on loopback with a generated config (file_sd for replicas and GPUs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from headroom.daemon import Daemon


def scrape_config(
    sd_dir: Path,
    gateway_target: str,
    scrape_interval_s: int = 5,
    autoscaler_target: str | None = None,
    rule_file: Path | None = None,
    alertmanager: str | None = None,
) -> dict:
    """Prometheus config: vLLM replicas and their GPU endpoints from file_sd, the gateway (and the autoscaler's own
    /metrics, when it runs) as static targets; the mixin's rules and an Alertmanager, when given."""
    interval = f"{scrape_interval_s}s"

    def file_sd_job(name: str, file: str) -> dict:
        return {"job_name": name, "file_sd_configs": [{"files": [str(sd_dir / file)], "refresh_interval": interval}]}

    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "scrape_timeout": f"{max(1, scrape_interval_s - 1)}s",
        },
        "scrape_configs": [
            file_sd_job("vllm", "replicas.json"),
            {**file_sd_job("dcgm", "gpus.json"), "honor_labels": True},
            {"job_name": "gateway", "static_configs": [{"targets": [gateway_target]}]},
        ]
        + (
            [{"job_name": "autoscaler", "static_configs": [{"targets": [autoscaler_target]}]}]
            if autoscaler_target
            else []
        ),
        **({"rule_files": [str(rule_file)]} if rule_file else {}),
        **(
            {"alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}} if alertmanager else {}
        ),
    }


def find_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError(
            "the `prometheus` binary is not on PATH; install Debian's package: apt-get install prometheus (make demo does)"
        )
    return binary


class PrometheusProcess(Daemon):
    """One Prometheus server with its own data directory."""

    name = "prometheus"
    title = "Prometheus"

    def __init__(self, config: dict, run_dir: Path, host: str = "127.0.0.1", port: int = 9090, retention: str = "1d"):
        super().__init__(config, run_dir, host, port)
        self.retention = retention

    def command(self, config_path: Path) -> list[str]:
        return [
            find_binary(),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.run_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            f"--storage.tsdb.retention.time={self.retention}",
            "--web.enable-lifecycle",
        ]
