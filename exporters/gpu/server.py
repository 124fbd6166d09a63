"""`headroom gpu-exporter`: serves NVML readings with dcgm-exporter's names at :9400/metrics until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exporters.gpu.collector import GpuCollector, GpuSource, SampledGpus
from serving.contracts.dcgm_fields import render_dcgm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuExporterConfig:
    host: str = "127.0.0.1"  # loopback unless asked: on a node, --host 0.0.0.0 (or the pod IP) for Prometheus
    port: int = 9400  # dcgm-exporter's
    interval_s: float = 1.0  # how often NVML is read (dcgm-exporter's -c, in seconds)
    hostname: str | None = None  # the Hostname label (NODE_NAME on Kubernetes); this host's name when unset

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise ValueError(f"port: {self.port} is not a TCP port (1-65535)")
        if not 0.05 <= self.interval_s <= 3600:
            raise ValueError(f"interval_s: {self.interval_s} must be between 0.05 and 3600 seconds")


def build_registry(sampled: SampledGpus, hostname: str | None, pods=None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GpuCollector(sampled.rows, hostname, pods))
    return registry


def serve(
    config: GpuExporterConfig,
    source: GpuSource,
    pods=None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Sample `source`, serve /metrics (and /health) until `stop` is set or SIGTERM/SIGINT arrives."""
    sampled = SampledGpus(source, config.interval_s).start()
    registry = build_registry(sampled, config.hostname, pods)

    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a client may take to send its request: a slow one does not hold a thread for good

        def do_GET(self):
            if self.path.split("?")[0] == "/metrics":
                body, status, kind = render_dcgm(registry), 200, CONTENT_TYPE_LATEST
            elif self.path == "/health":
                body, status, kind = b"ok\n", 200, "text/plain"
            else:
                body, status, kind = b"not found: the GPU exporter serves /metrics and /health\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((config.host, config.port), Handler)
    server.daemon_threads = True
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    log.info(
        "gpu exporter on http://%s:%d/metrics, reading %d GPU(s) every %g s",
        config.host,
        server.server_address[1],
        len(sampled.rows()),
        config.interval_s,
    )
    if ready is not None:
        ready.set()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        sampled.stop()
