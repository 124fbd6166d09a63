"""Run Debian's `prometheus` on loopback with a generated config (file_sd for replicas and GPUs) and query it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import aiohttp
import yaml

from serving.child_process import die_with_parent

log = logging.getLogger("headroom.prometheus")


def scrape_config(sd_dir: Path, gateway_target: str, scrape_interval_s: int = 5, autoscaler_target: str | None = None) -> dict:
    """Prometheus config: vLLM replicas and their GPU endpoints from file_sd, the gateway (and the autoscaler's own
    /metrics, when it runs) as static targets."""
    interval = f"{scrape_interval_s}s"

    def file_sd_job(name: str, file: str) -> dict:
        return {"job_name": name, "file_sd_configs": [{"files": [str(sd_dir / file)], "refresh_interval": interval}]}

    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": f"{max(1, scrape_interval_s - 1)}s"},
        "scrape_configs": [
            file_sd_job("vllm", "replicas.json"),
            {**file_sd_job("dcgm", "gpus.json"), "honor_labels": True},
            {"job_name": "gateway", "static_configs": [{"targets": [gateway_target]}]},
        ] + ([{"job_name": "autoscaler", "static_configs": [{"targets": [autoscaler_target]}]}] if autoscaler_target else []),
    }


def find_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("the `prometheus` binary is not on PATH; install Debian's package: apt-get install prometheus (make demo does)")
    return binary


class PrometheusProcess:
    """One Prometheus server with its own data directory; stopped by its process id."""

    def __init__(self, config: dict, run_dir: Path, host: str = "127.0.0.1", port: int = 9090, retention: str = "1d"):
        self.config, self.run_dir, self.host, self.port, self.retention = config, run_dir, host, port, retention
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.run_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        log_file = open(self.run_dir / "prometheus.log", "ab")
        self.process = await asyncio.create_subprocess_exec(
            find_binary(), f"--config.file={config_path}", f"--storage.tsdb.path={self.run_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}", f"--storage.tsdb.retention.time={self.retention}",
            "--web.enable-lifecycle", stdout=log_file, stderr=log_file, stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        log_file.close()
        await self._wait_ready(timeout)
        log.info("Prometheus %s (pid %d) is ready", self.url, self.process.pid)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                if self.process.returncode is not None:
                    tail = (self.run_dir / "prometheus.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"prometheus exited with code {self.process.returncode}:\n{tail}")
                try:
                    async with session.get(f"{self.url}/-/ready") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"prometheus did not become ready on {self.url} within {timeout:.0f} s")
                await asyncio.sleep(0.2)

    async def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()
