"""The gateway as a running service: HTTP listeners, discovery and health checks started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from exporters.gateway.config import GatewayConfig
from exporters.gateway.discovery import Discovery, HealthChecker
from exporters.gateway.gateway import Gateway, json_error
from exporters.gateway.metrics import ListenerCollector
from serving.common.http.limits import ListenerLimits
from serving.common.http.listener import Listener, listen

log = logging.getLogger("headroom.gateway")


class GatewayService:
    """`discover`: run the configured discovery; off when someone else calls set_backends (the local fleet)."""

    def __init__(self, config: GatewayConfig, discover: bool = True):
        self.config = config
        self.gateway = Gateway(config)
        self.discovery = Discovery(config.backends, self.gateway.set_backends) if discover else None
        self.health = HealthChecker(self.gateway.pool, config.backends)
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task] = []
        self.port = config.port
        self.metrics_port = config.metrics_port

    async def start(self) -> None:
        if self.discovery is not None:
            await self.discovery.poll_once()  # the first targets before the first request
            self._tasks.append(asyncio.create_task(self.discovery.run(), name="gateway-discovery"))
        # the models the backends serve before the first request, so that its metrics carry its model's label
        # (until a backend has reported them, requests count as `unknown`, outside any model's demand)
        await self.health.check_all()
        self._tasks.append(asyncio.create_task(self.health.run(checked=True), name="gateway-health"))
        config = self.config
        main = await listen(self.gateway.handle, config.host, config.port, config.limits, config.tls)
        self._listeners.append(main)
        self.gateway.registry.register(ListenerCollector(main.stats))
        self.port = main.port
        if config.metrics_port is not None:
            metrics = await listen(
                self._metrics_only, config.host, config.metrics_port, ListenerLimits(max_body_bytes=1024)
            )
            self._listeners.append(metrics)
            self.metrics_port = metrics.port
        scheme = "https" if config.tls else "http"
        log.info(
            "gateway on %s://%s:%d, %d backend(s)", scheme, config.host, self.port, len(self.gateway.pool.backends)
        )

    async def _metrics_only(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/metrics" and request.method in ("GET", "HEAD"):
            return self.gateway.metrics_response()
        return json_error(404, "this port serves GET /metrics only")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for listener in self._listeners:
            await listener.close()
        await self.health.close()
        await self.gateway.close()


async def run_gateway(config: GatewayConfig) -> None:
    """`headroom gateway`: serve until SIGTERM or SIGINT."""
    service = GatewayService(config)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await service.stop()
