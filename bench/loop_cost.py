"""Loop cost: one pass of `headroom autoscale` over 100 targets against a real Prometheus (Debian's), which scrapes
synthetic vLLM exporters: 100 models x 3 replicas, the metric names and labels the source queries."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from autoscaler.actuators.base import DryRun
from autoscaler.loop import AutoscalerLoop, Target
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy.predictive import Predictive, PredictiveConfig
from autoscaler.sources.prometheus import PrometheusSource, PrometheusSourceConfig
from bench.emulator_cost import free_port
from headroom.prometheus import PrometheusProcess
from serving.contracts.vllm_metrics import ITL_BUCKETS, TTFT_BUCKETS


class SyntheticReplica:
    """One exporter standing for one replica of every model: vLLM's series, moving every second."""

    def __init__(self, models: list[str], seed: int):
        self.models, self.rng = models, np.random.default_rng(seed)
        r = self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        self.success = Counter("vllm:request_success", "", labels + ["finished_reason"], registry=r)
        self.prompt = Counter("vllm:prompt_tokens", "", labels, registry=r)
        self.generation = Counter("vllm:generation_tokens", "", labels, registry=r)
        self.running = Gauge("vllm:num_requests_running", "", labels, registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "", labels, registry=r)
        self.kv = Gauge("vllm:kv_cache_usage_perc", "", labels, registry=r)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "", labels, buckets=TTFT_BUCKETS, registry=r)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "", labels, buckets=ITL_BUCKETS, registry=r)
        self.rates = self.rng.uniform(1.0, 30.0, len(models))

    def tick(self) -> None:
        for model, rate in zip(self.models, self.rates):
            n = int(self.rng.poisson(rate))
            key = (model, "0")
            self.success.labels(*key, "length").inc(n)
            self.prompt.labels(*key).inc(n * 1000)
            self.generation.labels(*key).inc(n * 200)
            self.running.labels(*key).set(rate * 2)
            self.waiting.labels(*key).set(self.rng.poisson(0.5))
            self.kv.labels(*key).set(min(1.0, rate / 40))
            for _ in range(min(n, 5)):
                self.ttft.labels(*key).observe(self.rng.gamma(2.0, 0.05))
                self.itl.labels(*key).observe(self.rng.gamma(4.0, 0.004))


def _text_exposition_server(registry: CollectorRegistry) -> ThreadingHTTPServer:
    """/metrics in the text format vLLM serves (prometheus_client's own server would answer Prometheus in
    OpenMetrics, whose names have no colons: vllm:num_requests_running would arrive as vllm_num_requests_running)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # Prometheus gave up on this scrape (its timeout): the next one counts

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(targets: int = 100, replicas: int = 3, passes: int = 20) -> dict:
    models = [f"model-{i:03d}" for i in range(targets)]
    exporters = [SyntheticReplica(models, seed) for seed in range(replicas)]
    ports, servers = [], []
    for exporter in exporters:
        server = _text_exposition_server(exporter.registry)
        ports.append(server.server_address[1])
        servers.append(server)
    stop = threading.Event()

    def move():
        while not stop.is_set():
            for exporter in exporters:
                exporter.tick()
            stop.wait(1.0)

    mover = threading.Thread(target=move, daemon=True)
    mover.start()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "vllm", "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}]}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        prometheus = PrometheusProcess(config, Path(tmp), port=free_port())
        events = asyncio.new_event_loop()  # start and stop on one loop: it owns the child process
        events.run_until_complete(prometheus.start())
        try:
            time.sleep(12)  # Prometheus applies its targets after a few seconds; then some history for rate()
            source = PrometheusSource(PrometheusSourceConfig(url=prometheus.url, rate_window="10s", stale_after_s=30))
            fleet = [
                Target(m, Predictive(PredictiveConfig(capacity_rps=10.0, max_replicas=50)), DryRun(initial=replicas))
                for m in models
            ]
            metrics = AutoscalerMetrics()
            loop = AutoscalerLoop(fleet, source, metrics)
            durations, stale = [], 0
            for _ in range(passes):
                started = time.perf_counter()
                decisions = loop.run_once()
                durations.append(time.perf_counter() - started)
                stale += sum(
                    metrics.registry.get_sample_value("headroom_autoscaler_stale", {"target": m}) or 0 for m in models
                )
                time.sleep(0.5)
        finally:
            events.run_until_complete(prometheus.stop())
            events.close()
            stop.set()
            for server in servers:
                server.shutdown()
                server.server_close()
    return {
        "targets": targets,
        "replicas": replicas,
        "passes": passes,
        "decided": len(decisions),
        "median_s": statistics.median(durations),
        "p95_s": float(np.quantile(durations, 0.95)),
        "max_s": max(durations),
        "stale_target_passes": int(stale),
    }


def loop_cost_section() -> str:
    r = measure()
    verdict = "meets" if r["max_s"] <= 1.0 else "MISSES"
    return "\n".join(
        [
            "## Autoscaler loop cost",
            "",
            (
                f"One pass of the loop (counts, the Prometheus source's queries, the predictive policy, the dry-run actuator) over "
                f"{r['targets']} targets, against a real Prometheus scraping {r['replicas']} synthetic vLLM exporters every second "
                f"(each serving vLLM's series for all {r['targets']} models: {r['targets'] * r['replicas']} replica series per "
                f"metric); {r['passes']} passes. The source asks one query per signal for all targets at once (11, the "
                "gateway's arrivals and queue among them, which find no gateway here)."
            ),
            "",
            "| targets | decided per pass | pass median (s) | p95 (s) | max (s) | stale target-passes | goal |",
            "|---|---|---|---|---|---|---|",
            (
                f"| {r['targets']} | {r['decided']} | {r['median_s']:.3f} | {r['p95_s']:.3f} | {r['max_s']:.3f} | "
                f"{r['stale_target_passes']} | <= 1 s: {verdict} |"
            ),
        ]
    )
