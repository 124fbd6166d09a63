"""The gateway as a running service: HTTP listener, discovery and health checks started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import signal

from exporters.gateway.config import GatewayConfig
from exporters.gateway.discovery import Discovery, HealthChecker
from exporters.gateway.gateway import Gateway
from serving.http.server import serve

log = logging.getLogger("headroom.gateway")


class GatewayService:
    """`discover`: run the configured discovery; off when someone else calls set_backends (the local fleet)."""

    def __init__(self, config: GatewayConfig, discover: bool = True):
        self.config = config
        self.gateway = Gateway(config)
        self.discovery = Discovery(config.backends, self.gateway.set_backends) if discover else None
        self.health = HealthChecker(self.gateway.pool, config.backends)
        self._server = None
        self._tasks: list[asyncio.Task] = []
        self.port = config.port

    async def start(self) -> None:
        if self.discovery is not None:
            await self.discovery.poll_once()  # the first targets before the first request
            self._tasks.append(asyncio.create_task(self.discovery.run(), name="gateway-discovery"))
        self._tasks.append(asyncio.create_task(self.health.run(), name="gateway-health"))
        self._server = await serve(self.gateway.handle, self.config.host, self.config.port, max_body=self.config.max_body_bytes)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("gateway on http://%s:%d, %d backend(s)", self.config.host, self.port, len(self.gateway.pool.backends))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
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
