"""`headroom up`: the emulator fleet, the gateway in front and a real Prometheus, started and stopped together."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from exporters.gateway.router import Router
from headroom.demo import run_demo_load
from headroom.prometheus import PrometheusProcess, scrape_config
from headroom.summary import query_summary
from serving.fleet.fleet import FleetConfig, LocalFleet, ReplicaState, free_port
from serving.http.server import serve
from serving.profiles import gpu_price_per_hour, load_profile

log = logging.getLogger("headroom.up")


class StackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replicas: int = Field(2, ge=0)
    profile: str = "llama-3.1-8b-h100"
    cold_start_s: float = Field(5.0, ge=0)
    host: str = "127.0.0.1"
    gateway_port: int = Field(8080, ge=0, le=65535)
    prometheus_port: int = Field(9090, ge=0, le=65535)
    scrape_interval_s: int = Field(5, ge=1)
    run_dir: Path = Path(".run")
    demo: bool = False
    demo_duration_s: float = Field(60.0, gt=0)
    demo_rate: float = Field(8.0, gt=0)
    json_output: bool = False


class LocalStack:
    """Start order: Prometheus, gateway, fleet; stop order: the reverse. Every process is stopped by its pid."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.profile = load_profile(config.profile)  # fail fast on a bad profile name
        self.router = Router()
        self.gateway_port = config.gateway_port or free_port(config.host)
        self.prometheus = PrometheusProcess(
            scrape_config(config.run_dir.resolve() / "targets", f"{config.host}:{self.gateway_port}", config.scrape_interval_s),
            config.run_dir.resolve() / "prometheus", config.host, config.prometheus_port or free_port(config.host))
        self.fleet = LocalFleet(FleetConfig(profile=config.profile, cold_start_s=config.cold_start_s, host=config.host,
                                            sd_dir=config.run_dir.resolve() / "targets", log_dir=config.run_dir.resolve() / "logs"),
                                on_change=self.router.set_backends)
        self._gateway_server = None

    @property
    def gateway_url(self) -> str:
        return f"http://{self.config.host}:{self.gateway_port}"

    async def start(self, wait_ready_s: float = 120.0) -> None:
        await self.prometheus.start()
        try:
            self._gateway_server = await serve(self.router.handle, self.config.host, self.gateway_port)
            await self.fleet.scale(self.config.replicas)
            wanted = self.config.replicas
            await self.fleet.wait_for(lambda fleet: len(fleet.by_state(ReplicaState.READY)) >= wanted, wait_ready_s)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self.fleet.close()
        if self._gateway_server is not None:
            self._gateway_server.close()
        await self.router.close()
        await self.prometheus.stop()


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def format_summary(summary: dict, load: dict) -> str:
    def f(key, fmt):
        value = summary.get(key, math.nan)
        return fmt.format(value) if not (isinstance(value, float) and math.isnan(value)) else "n/a (no data)"

    lines = [
        "Summary read back from Prometheus (PromQL):",
        f"  requests/s               {f('requests_per_s', '{:.2f}')}",
        f"  output tokens/s          {f('output_tokens_per_s', '{:.0f}')}",
        f"  p95 TTFT                 {f('ttft_p95_s', '{:.3f} s')}",
        f"  p95 ITL                  {f('itl_p95_s', '{:.4f} s')}",
        f"  KV cache use (mean/max)  {f('kv_cache_usage_mean', '{:.1%}')} / {f('kv_cache_usage_max', '{:.1%}')}",
        f"  GPU utilization (mean)   {f('gpu_util_mean_pct', '{:.1f} %')}",
        f"  GPU-hours                {f('gpu_hours', '{:.4f}')}",
        f"  cost                     {f('cost_usd', '$ {:.4f}')} at $ {summary['usd_per_gpu_hour']:.2f} per GPU-hour",
        f"  cost per 1M output tok   {f('cost_per_million_output_tokens', '$ {:.2f}')}",
        "Load (client side):",
        f"  sent {load['sent']}, ok {load['ok']}, failed {load['failed']}, output tokens {load['output_tokens']}",
    ]
    if load["errors"]:
        lines.append(f"  errors: {load['errors']}")
    return "\n".join(lines)


async def run_demo(stack: LocalStack, config: StackConfig) -> int:
    _print(f"demo: {config.demo_rate:g} requests/s for {config.demo_duration_s:g} s through {stack.gateway_url}")
    result = await run_demo_load(stack.gateway_url, stack.profile.model.name, config.demo_rate, config.demo_duration_s, progress=_print)
    settle = 2 * config.scrape_interval_s + 1
    _print(f"load done; waiting {settle} s for the last scrapes")
    await asyncio.sleep(settle)
    window = int(config.demo_duration_s + settle)
    price = gpu_price_per_hour(stack.profile.gpu.name)
    summary = await asyncio.to_thread(query_summary, stack.prometheus.url, window, config.scrape_interval_s, price,
                                      config.demo_duration_s)
    values = summary.as_dict()
    load = {"sent": result.sent, "ok": result.ok, "failed": result.failed, "output_tokens": result.output_tokens, "errors": result.errors}
    if config.json_output:
        print(json.dumps({"prometheus": values, "load": load, "profile": stack.profile.name}, indent=2))
    else:
        print(format_summary(values, load))
    missing = [k for k, v in values.items() if isinstance(v, float) and math.isnan(v)]
    if missing or result.failed or result.ok == 0:
        _print(f"demo FAILED: missing from Prometheus: {missing or 'none'}; failed requests: {result.failed}")
        return 1
    return 0


async def run_stack(config: StackConfig) -> int:
    stack = LocalStack(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _print(f"starting Prometheus, the gateway and {config.replicas} replica(s) of {config.profile} "
           f"(cold start {config.cold_start_s:g} s)")
    await stack.start()
    _print(f"gateway     {stack.gateway_url}  (OpenAI API: /v1/completions, /v1/chat/completions; /metrics)")
    _print(f"prometheus  {stack.prometheus.url}")
    for r in stack.fleet.status()["replicas"]:
        _print(f"{r['name']:11s} http://{r['address']}  GPU metrics http://{r['gpu_address']}/metrics  pid {r['pid']}")
    try:
        if config.demo:
            demo = asyncio.create_task(run_demo(stack, config))
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({demo, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if demo in done:
                waiter.cancel()
                return demo.result()
            demo.cancel()
            return 130
        _print("running; Ctrl-C stops everything")
        await stop.wait()
        return 0
    finally:
        _print("stopping: draining replicas, then the gateway and Prometheus")
        await stack.stop()
