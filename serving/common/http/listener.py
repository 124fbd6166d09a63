"""A public HTTP listener on aiohttp's server: size limits, timeouts, a connection cap and TLS that reloads.

aiohttp parses (llhttp), handles pipelining, HEAD and keep-alive; this module adds what a listener exposed to
careless or hostile clients also needs and aiohttp leaves out: a deadline for a request's headers once its first
byte came (slowloris), a cap on open connections, and a certificate re-read when its files change. Every number is
in `ListenerLimits`, documented in docs/gateway.md.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from serving.common.http.errors import error_body
from serving.common.http.limits import ListenerLimits, TlsFiles

log = logging.getLogger("headroom.http")
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class _GuardedHandler(RequestHandler):
    """aiohttp's per-connection protocol with a header deadline: armed when the connection opens and by the first
    byte of each later request, disarmed when the request reaches the handler. A keep-alive connection idle between
    requests is aiohttp's keep-alive timeout's to close."""

    def __init__(self, manager: _GuardedServer, **kwargs):
        super().__init__(manager, **kwargs)
        self.guard = manager
        self.header_timer: asyncio.TimerHandle | None = None
        self.in_request = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.guard.connections) > self.guard.limits.max_connections:
            self.guard.refused += 1
            transport.close()
            return
        # a new connection owes its first request's headers within the header deadline, as in nginx
        self.header_timer = self._loop.call_later(self.guard.limits.header_timeout_s, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        if self.header_timer is None and not self.in_request:
            self.header_timer = self._loop.call_later(self.guard.limits.header_timeout_s, self._headers_too_slow)
        super().data_received(data)

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if not self.in_request and self.transport is not None:
            self.guard.timed_out += 1
            self.force_close()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None, message: str | None = None):
        """A request the parser refused: an OpenAI-style 4xx, logged at debug level (it is the client's error, and
        a public listener meets many); a server error goes to aiohttp's own handling."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response had begun: the connection is closed instead")
        reason = getattr(exc, "message", None) or message or "malformed HTTP request"
        reason = " ".join(str(reason).split())[:200]
        log.debug("refused a request from %s: %s", request.remote, reason)
        self.guard.malformed += 1
        response = web.Response(
            status=status, body=error_body(status, f"malformed HTTP request: {reason}"), content_type="application/json"
        )
        response.force_close()
        return response

    def request_started(self) -> None:
        self.in_request = True
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def connection_lost(self, exc) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        super().connection_lost(exc)


class _GuardedServer(web.Server):
    """aiohttp's low-level server making `_GuardedHandler` protocols; counts what the guards turned away."""

    def __init__(self, handler: Handler, limits: ListenerLimits, **kwargs):
        super().__init__(self._guarded(handler), handler_cancellation=True, **kwargs)
        self.limits = limits
        self.refused = self.timed_out = self.malformed = 0

    @staticmethod
    def _guarded(handler: Handler) -> Handler:
        async def guarded(request: web.BaseRequest) -> web.StreamResponse:
            protocol = request.protocol
            protocol.request_started()
            try:
                return await handler(request)
            finally:
                protocol.in_request = False

        return guarded

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)


def server_options(limits: ListenerLimits) -> dict:
    """aiohttp's own knobs for the limits it enforces itself."""
    return {
        "max_line_size": limits.max_url_bytes,
        "max_field_size": limits.max_header_bytes,
        "max_headers": limits.max_headers,
        "keepalive_timeout": limits.idle_timeout_s,
        "lingering_time": 2.0,
        "access_log": None,
        "auto_decompress": False,
    }


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, tls)
    return context


def _load_chain(context: ssl.SSLContext, tls: TlsFiles) -> None:
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except FileNotFoundError as err:
        raise ValueError(f"TLS: {err.filename}: no such file") from None
    except ssl.SSLError as err:
        raise ValueError(
            f"TLS: {tls.cert_file} and {tls.key_file} are not a PEM certificate chain and its key: {err.reason or err}"
        ) from None


def _mtimes(tls: TlsFiles) -> tuple[float, float]:
    return tls.cert_file.stat().st_mtime_ns, tls.key_file.stat().st_mtime_ns


async def reload_tls_on_change(context: ssl.SSLContext, tls: TlsFiles) -> None:
    """Re-read the chain into the live context when a file changes (new handshakes take it); a broken pair (a
    rotation half done) keeps the old one and is retried at the next change."""
    try:
        seen = _mtimes(tls)
    except OSError:
        seen = (0.0, 0.0)
    while True:
        await asyncio.sleep(tls.reload_interval_s)
        try:
            now = _mtimes(tls)
        except OSError as err:
            log.warning("TLS files: %s; keeping the loaded certificate", err)
            continue
        if now == seen:
            continue
        seen = now
        try:
            _load_chain(context, tls)
            log.info("TLS certificate reloaded from %s", tls.cert_file)
        except ValueError as err:
            log.warning("%s; keeping the loaded certificate", err)


@dataclass
class Listener:
    """A started listener: its bound port and what stops it."""

    runner: web.ServerRunner
    site: web.TCPSite
    server: _GuardedServer
    tls_task: asyncio.Task | None = None

    @property
    def port(self) -> int:
        return self.site.port

    def stats(self) -> dict[str, int]:
        """Open connections, and connections turned away by each guard since the start."""
        server = self.server
        return {
            "open": len(server.connections),
            "max_connections": server.refused,
            "header_timeout": server.timed_out,
            "malformed": server.malformed,
        }

    async def close(self) -> None:
        if self.tls_task is not None:
            self.tls_task.cancel()
        await self.runner.cleanup()


async def listen(
    handler: Handler,
    host: str,
    port: int,
    limits: ListenerLimits,
    tls: TlsFiles | None = None,
    shutdown_timeout_s: float = 5.0,
) -> Listener:
    """Serve `handler` on host:port (TLS when `tls` is given) within `limits`."""
    server = _GuardedServer(handler, limits, **server_options(limits))
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    context = tls_context(tls) if tls is not None else None
    site = web.TCPSite(runner, host, port, ssl_context=context, backlog=1024, reuse_address=True)
    await site.start()
    task = asyncio.create_task(reload_tls_on_change(context, tls), name="tls-reload") if context is not None else None
    return Listener(runner, site, server, task)
