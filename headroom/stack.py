"""`headroom up`: the emulator fleet, the gateway in front and a real Prometheus, started and stopped together."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
import threading
import time
from pathlib import Path

from pydantic import Field

from exporters.gateway.config import parse_gateway_config
from exporters.gateway.service import GatewayService
from headroom.alerting import (
    AlertmanagerProcess,
    WebhookReceiver,
    alertmanager_config,
    stack_rules,
)
from headroom.console import ConsoleProcess, console_env
from headroom.drill import alert_drill
from headroom.prometheus import PrometheusProcess, scrape_config
from headroom.summary import query_summary, replica_timeline
from loadgen.campaign import SHIPPED
from loadgen.run import run_campaign
from serving.common.strict import Strict
from serving.fleet.fleet import FleetConfig, LocalFleet, ReplicaState, free_port
from serving.profiles import gpu_price_per_hour, load_profile

log = logging.getLogger("headroom.up")


class StackConfig(Strict):
    replicas: int = Field(2, ge=0)
    profile: str = "llama-3.1-8b-h100"
    cold_start_s: float = Field(5.0, ge=0)
    host: str = "127.0.0.1"
    gateway_port: int = Field(8080, ge=0, le=65535)
    prometheus_port: int = Field(9090, ge=0, le=65535)
    scrape_interval_s: int = Field(5, ge=1)
    run_dir: Path = Path(".run")
    demo: bool = False
    campaign: Path = SHIPPED / "demo.yaml"  # what --demo runs through the gateway
    results_dir: Path = Path("results/demo")
    json_output: bool = False
    autoscale: bool = False  # the predictive autoscaler on this fleet, from this Prometheus
    autoscale_max: int = Field(6, ge=1)
    autoscale_interval_s: float = Field(5.0, gt=0)
    autoscale_lengths: tuple[float, float] = (
        600.0,
        180.0,
    )  # mean prompt and output tokens its capacity is measured for
    # the one SLO of the stack: the gateway counts requests against it, the autoscaler scales for it, alerts burn on it
    slo_ttft_s: float = Field(1.0, gt=0)
    slo_itl_s: float = Field(0.05, gt=0)
    alerting: bool = (
        True  # the mixin's rules in Prometheus, a real Alertmanager, and a webhook receiver writing alerts.jsonl
    )
    alert_drill_s: float = Field(30.0, ge=0)  # --demo: engine errors injected this long to fire an alert (0: none)
    console_port: int | None = Field(None, ge=0, le=65535)  # the Streamlit console beside the stack (0: any free port)


class LocalStack:
    """Start order: Prometheus, gateway, fleet; stop order: the reverse. Every process is stopped by its pid."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.profile = load_profile(config.profile)  # fail fast on a bad profile name
        self.gateway_port = config.gateway_port or free_port(config.host)
        # the fleet tells the gateway which replicas are ready; the gateway's health checks still eject failing ones
        slo = {"ttft_s": config.slo_ttft_s, "tpot_s": config.slo_itl_s}
        self.gateway = GatewayService(
            parse_gateway_config(
                {"host": config.host, "port": self.gateway_port, "default_limits": {"slo": slo}}, "the stack's gateway"
            ),
            discover=False,
        )
        self.autoscaler_port = free_port(config.host) if config.autoscale else None
        run_dir = config.run_dir.resolve()
        self.receiver = self.alertmanager = None
        rule_file = None
        if config.alerting:
            rule_file, inhibit_rules = stack_rules(
                run_dir / "rules",
                config.scrape_interval_s,
                {"ttftSeconds": config.slo_ttft_s, "tpotSeconds": config.slo_itl_s},
            )
            self.receiver = WebhookReceiver(run_dir / "alerts.jsonl", config.host, free_port(config.host))
            self.alertmanager = AlertmanagerProcess(
                alertmanager_config(self.receiver.url, inhibit_rules),
                run_dir / "alertmanager",
                config.host,
                free_port(config.host),
            )
        self.prometheus = PrometheusProcess(
            scrape_config(
                run_dir / "targets",
                f"{config.host}:{self.gateway_port}",
                config.scrape_interval_s,
                f"{config.host}:{self.autoscaler_port}" if config.autoscale else None,
                rule_file,
                f"{config.host}:{self.alertmanager.port}" if self.alertmanager else None,
            ),
            run_dir / "prometheus",
            config.host,
            config.prometheus_port or free_port(config.host),
        )
        self.autoscaler = None
        self.decision_log_path = run_dir / "autoscaler-decisions.jsonl"
        self.console = None
        if config.console_port is not None:
            env = console_env(
                self.prometheus.url,
                self.alertmanager.url if self.alertmanager else None,
                self.decision_log_path if config.autoscale else None,
            )
            self.console = ConsoleProcess(
                config.host, config.console_port or free_port(config.host), env, run_dir / "logs" / "console.log"
            )
        self.fleet = LocalFleet(
            FleetConfig(
                profile=config.profile,
                cold_start_s=config.cold_start_s,
                host=config.host,
                sd_dir=config.run_dir.resolve() / "targets",
                log_dir=config.run_dir.resolve() / "logs",
            ),
            on_change=self.gateway.gateway.set_backends,
        )

    @property
    def gateway_url(self) -> str:
        return f"http://{self.config.host}:{self.gateway_port}"

    async def start(self, wait_ready_s: float = 120.0) -> None:
        try:
            if self.alertmanager is not None:
                await self.receiver.start()
                await self.alertmanager.start()
            await self.prometheus.start()
            await self.gateway.start()
            await self.fleet.scale(self.config.replicas)
            wanted = self.config.replicas
            await self.fleet.wait_for(lambda fleet: len(fleet.by_state(ReplicaState.READY)) >= wanted, wait_ready_s)
            if self.config.autoscale:
                # built off the event loop: measuring the engine's capacity for the length mix takes seconds (once)
                self.autoscaler = await asyncio.to_thread(LocalAutoscaler, self, asyncio.get_running_loop())
                self.autoscaler.start()
            if self.console is not None:
                await self.console.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.stop()
        if self.autoscaler is not None:
            await asyncio.to_thread(self.autoscaler.stop)
        await self.fleet.close()
        await self.gateway.stop()
        await self.prometheus.stop()
        if self.alertmanager is not None:
            await self.alertmanager.stop()
            await self.receiver.stop()


class LocalAutoscaler:
    """`headroom autoscale`'s loop on the local fleet: the Prometheus source on the stack's Prometheus, the predictive
    policy with the engine's capacity for the campaign's length mix, the local actuator; its /metrics are scraped."""

    def __init__(self, stack: LocalStack, event_loop: asyncio.AbstractEventLoop):
        from prometheus_client import start_http_server

        from autoscaler.actuators.local import LocalFleetActuator
        from autoscaler.config import parse_config
        from autoscaler.metrics import AutoscalerMetrics
        from headroom.autoscale import build_loop

        cfg = stack.config
        prompt, output = cfg.autoscale_lengths
        config = parse_config(
            {
                "prometheus": {
                    "url": stack.prometheus.url,
                    "rate_window": f"{4 * cfg.scrape_interval_s}s",
                    "stale_after_s": 6 * cfg.scrape_interval_s,
                },
                "interval_s": cfg.autoscale_interval_s,
                "targets": [
                    {
                        "name": stack.profile.model.name,
                        "slo": {"ttft_s": cfg.slo_ttft_s, "itl_s": cfg.slo_itl_s},
                        "min_replicas": 1,
                        "max_replicas": cfg.autoscale_max,
                        "cold_start_s": cfg.cold_start_s + 2.0,  # the emulator's own, and its process start
                        # the production defaults (60 s, 60 s, 300 s, 600 s) suit 90 s cold starts; here replicas start in seconds
                        "scale_down_window_s": 4 * cfg.autoscale_interval_s,
                        "cooldown_s": 2 * cfg.autoscale_interval_s,
                        # the forecaster is proven after 20 scored forecasts, longer than a demo campaign: no
                        # longer window while unproven here, or the fleet could not come back down within it
                        "scale_down_window_unproven_s": 4 * cfg.autoscale_interval_s,
                        "rise_memory_s": 10 * cfg.autoscale_interval_s,
                        "capacity": {"profile": cfg.profile, "prompt_tokens": prompt, "output_tokens": output},
                        "actuator": {"kind": "local"},
                    }
                ],
            },
            "headroom up --autoscale",
        )
        self.interval_s = cfg.autoscale_interval_s
        self.metrics = AutoscalerMetrics()
        self.loop = build_loop(config, self.metrics, local=LocalFleetActuator(stack.fleet, event_loop))
        self.server, _ = start_http_server(stack.autoscaler_port, cfg.host, registry=self.metrics.registry)
        # the decision log the console reads: the loop's JSON lines, one per target and pass
        self.decision_log = logging.FileHandler(stack.decision_log_path, encoding="utf-8")
        self.decision_log.setFormatter(logging.Formatter("%(message)s"))
        # the decisions go to their file only (the console reads it), not between the demo's progress lines
        decisions = logging.getLogger("headroom.autoscaler")
        self._saved = decisions.level, decisions.propagate
        decisions.addHandler(self.decision_log)
        decisions.setLevel(logging.INFO)
        decisions.propagate = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoscaler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.loop.run_once()
            except Exception:  # a pass that fails is logged; the next one tries again
                log.exception("autoscaler pass failed")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.loop.close()
        self.server.shutdown()
        self.server.server_close()
        decisions = logging.getLogger("headroom.autoscaler")
        decisions.removeHandler(self.decision_log)
        decisions.level, decisions.propagate = self._saved
        self.decision_log.close()


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def format_summary(summary: dict, campaign: dict) -> str:
    """Prometheus (what the servers exported, read back with PromQL) next to the campaign (what clients measured)."""

    def f(value, fmt):
        return fmt.format(value) if not (isinstance(value, float) and math.isnan(value)) else "n/a"

    prom = lambda key, fmt: f(summary.get(key, math.nan), fmt)
    client = lambda key, fmt, scale=1.0: f(campaign.get(key, math.nan) * scale, fmt)
    rows = [
        ("requests/s", prom("requests_per_s", "{:.2f}"), client("request_throughput", "{:.2f}")),
        ("output tokens/s", prom("output_tokens_per_s", "{:.0f}"), client("output_throughput", "{:.0f}")),
        ("p95 TTFT", prom("ttft_p95_s", "{:.3f} s"), client("p95_ttft_ms", "{:.3f} s", 1e-3)),
        ("p95 ITL", prom("itl_p95_s", "{:.4f} s"), client("p95_itl_ms", "{:.4f} s", 1e-3)),
        (
            "KV cache use (mean/max)",
            f"{prom('kv_cache_usage_mean', '{:.1%}')} / {prom('kv_cache_usage_max', '{:.1%}')}",
            "",
        ),
        ("GPU utilization (mean)", prom("gpu_util_mean_pct", "{:.1f} %"), ""),
        ("GPU-hours", prom("gpu_hours", "{:.4f}"), ""),
        ("cost", f"{prom('cost_usd', '$ {:.4f}')} at $ {summary['usd_per_gpu_hour']:.2f}/GPU-h", ""),
        ("cost per 1M output tokens", prom("cost_per_million_output_tokens", "$ {:.2f}"), ""),
        ("requests ok / failed", "", f"{campaign['completed']} / {campaign['failed']} of {campaign['planned']}"),
        ("SLO attainment", "", client("slo_attainment", "{:.1%}")),
    ]
    lines = [f"{'':26s}  {'Prometheus (PromQL)':>30s}  {'campaign (clients)':>22s}"]
    lines += [f"{label:26s}  {a:>30s}  {b:>22s}" for label, a, b in rows]
    if campaign.get("errors"):
        lines.append(f"errors: {campaign['errors']}")
    return "\n".join(lines)


def format_timeline(rows: list[dict]) -> str:
    """The autoscaler following the load: one line per sample."""
    cell = lambda row, key, fmt: fmt.format(row[key]) if key in row and row[key] == row[key] else "-"
    lines = [
        "",
        "replicas following the load (from Prometheus, every 10 s):",
        f"{'t (s)':>6s}  {'req/s':>7s}  {'desired':>7s}  {'ready':>5s}  {'p95 TTFT':>9s}",
    ]
    for row in rows:
        lines.append(
            f"{row['time_s']:6.0f}  {cell(row, 'requests_per_s', '{:7.1f}'):>7s}  {cell(row, 'desired', '{:7.0f}'):>7s}  "
            f"{cell(row, 'ready', '{:5.0f}'):>5s}  {cell(row, 'ttft_p95_s', '{:7.3f} s'):>9s}"
        )
    return "\n".join(lines)


async def run_demo(stack: LocalStack, config: StackConfig) -> int:
    """Run the demo campaign through the gateway, then read the same period back from Prometheus."""
    overrides = {"target": stack.gateway_url, "model": stack.profile.model.name}
    _print(f"demo: campaign {config.campaign} through {stack.gateway_url}; results in {config.results_dir}")
    started = asyncio.get_running_loop().time()
    campaign, code = await asyncio.to_thread(
        run_campaign, str(config.campaign), config.results_dir, 0, config.json_output, overrides
    )
    elapsed = asyncio.get_running_loop().time() - started
    settle = 2 * config.scrape_interval_s + 1
    _print(f"load done; waiting {settle} s for the last scrapes")
    await asyncio.sleep(settle)
    price = gpu_price_per_hour(stack.profile.gpu.name)
    summary = await asyncio.to_thread(
        query_summary,
        stack.prometheus.url,
        int(elapsed + settle),
        config.scrape_interval_s,
        price,
        campaign["duration"] if campaign["duration"] == campaign["duration"] else elapsed,
    )
    values = summary.as_dict()
    timeline = []
    if config.autoscale:
        now = time.time()
        timeline = await asyncio.to_thread(replica_timeline, stack.prometheus.url, now - elapsed - settle, now)
    if config.json_output:
        print(
            json.dumps(
                {"prometheus": values, "campaign": campaign, "profile": stack.profile.name, "replicas": timeline},
                indent=2,
                default=str,
            )
        )
    else:
        print(format_summary(values, campaign))
        if timeline:
            print(format_timeline(timeline))
    missing = [k for k, v in values.items() if isinstance(v, float) and math.isnan(v)]
    if missing or code != 0 or campaign["failed"] or campaign["completed"] == 0:
        _print(
            f"demo FAILED: missing from Prometheus: {missing or 'none'}; campaign exit {code}, "
            f"failed requests {campaign['failed']}, {campaign['partial_reason'] or ''}"
        )
        return 1
    if (
        stack.alertmanager is not None
        and config.alert_drill_s > 0
        and not await alert_drill(stack, config.alert_drill_s, _print)
    ):
        _print("demo FAILED: the alert drill's alert did not fire and resolve")
        return 1
    return 0


async def run_stack(config: StackConfig) -> int:
    stack = LocalStack(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _print(
        f"starting Prometheus, the gateway and {config.replicas} replica(s) of {config.profile} "
        f"(cold start {config.cold_start_s:g} s)"
    )
    await stack.start()
    _print(f"gateway     {stack.gateway_url}  (OpenAI API: /v1/completions, /v1/chat/completions; /metrics)")
    _print(f"prometheus  {stack.prometheus.url}")
    if stack.alertmanager is not None:
        _print(f"alertmanager {stack.alertmanager.url}  (alerts as JSON lines in {stack.receiver.path})")
    if stack.autoscaler is not None:
        _print(f"autoscaler  decisions as JSON lines in {stack.decision_log_path}")
    if stack.console is not None:
        _print(
            f"console     {stack.console.url}  (cost per token, capacity planner, autoscaler, SLOs and alerts)  "
            f"pid {stack.console.process.pid}"
        )
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
