"""Minimal asyncio HTTP/1.1 server on httptools' parser, with synchronous streaming writes.

Why not a framework: the emulator streams one SSE event per token for hundreds of streams and
must cost far less CPU than the load it serves. Writing from the engine loop straight into each
connection's transport avoids a task wake-up per token, which ASGI servers cannot avoid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable

import httptools

from serving.http.errors import error_body

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 << 20
_REASONS = {s.value: s.phrase for s in HTTPStatus}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    received_s: float = 0.0  # time.monotonic() when its last byte arrived


Handler = Callable[[Request, "Responder"], Awaitable[None]]


@dataclass
class _Pending:
    url: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)
    size: int = 0
    too_large: bool = False


class Responder:
    """Writes one response: whole (`send`) or streamed in chunks (`start_stream`, `write`, `end`)."""

    __slots__ = ("_conn", "status", "streaming", "finished", "aborted", "on_close", "bytes_sent")

    def __init__(self, conn: "_Connection"):
        self._conn = conn
        self.status = 0
        self.streaming = False
        self.finished = False
        self.aborted = False
        self.on_close: Callable[[], None] | None = None
        self.bytes_sent = 0

    @property
    def closed(self) -> bool:
        return self._conn.transport is None or self._conn.transport.is_closing()

    @property
    def paused(self) -> bool:
        """The client reads slower than we write (its transport's buffer is over the high-water mark)."""
        return self._conn._paused

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if not self._conn.keep_alive:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, status: int, body: bytes, content_type: str = "application/json", headers: list[tuple[str, str]] | None = None) -> None:
        if self.status:
            raise RuntimeError("response already started")
        self.status = status
        head = self._head(status, [("content-type", content_type), ("content-length", str(len(body))), *(headers or [])])
        self._conn.write(head + body)
        self.bytes_sent += len(body)
        self._done()

    def start_stream(self, status: int = 200, content_type: str = "text/event-stream", headers: list[tuple[str, str]] | None = None) -> None:
        if self.status:
            raise RuntimeError("response already started")
        self.status = status
        self.streaming = True
        hdrs = [("content-type", content_type), ("transfer-encoding", "chunked"), ("cache-control", "no-cache"), *(headers or [])]
        self._conn.write(self._head(status, hdrs))

    def write(self, data: bytes) -> None:
        """One chunk of a streamed body; a no-op once the client is gone."""
        if data and not self.finished:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
            self.bytes_sent += len(data)

    def end(self) -> None:
        if not self.finished:
            self._conn.write(b"0\r\n\r\n")
            self._done()

    def abort(self) -> None:
        """Cut the connection (a streamed body that cannot be finished cleanly)."""
        self.finished = self.aborted = True
        if self._conn.transport is not None:
            self._conn.transport.close()

    async def drain(self) -> None:
        await self._conn.drain()

    def _done(self) -> None:
        self.finished = True
        self._conn.response_done()


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler, max_body: int):
        self.handler = handler
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending = _Pending()
        self.queue: list[Request | None] = []
        self.current: Responder | None = None
        self.keep_alive = True
        self._paused = False
        self._drain_waiters: list[asyncio.Future] = []

    # ---- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "upgrade not supported")
        except httptools.HttpParserError as err:
            self._reject(400, f"malformed HTTP request: {err}")

    def connection_lost(self, exc):
        self.transport = None
        current = self.current
        if current is not None and (not current.finished or current.aborted) and current.on_close is not None:
            current.on_close()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def pause_writing(self):
        self._paused = True

    def resume_writing(self):
        self._paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # ---- httptools callbacks ---------------------------------------------------------
    def on_message_begin(self):
        self.pending = _Pending()

    def on_url(self, url: bytes):
        self.pending.url += url

    def on_header(self, name: bytes, value: bytes):
        self.pending.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes):
        p = self.pending
        p.size += len(body)
        if p.size > self.max_body:
            p.too_large = True
        elif not p.too_large:
            p.body.append(body)

    def on_message_complete(self):
        p = self.pending
        if p.too_large:
            self.queue.append(None)
        else:
            url = httptools.parse_url(p.url)
            self.queue.append(Request(
                method=self.parser.get_method().decode(),
                path=url.path.decode("latin-1"),
                query=(url.query or b"").decode("latin-1"),
                headers=p.headers,
                body=b"".join(p.body),
                received_s=time.monotonic(),
            ))
        if not self.parser.should_keep_alive():
            self.keep_alive = False
        if self.current is None:
            self._next()

    # ---- responses ---------------------------------------------------------------------
    def write(self, data: bytes):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self):
        if self._paused and self.transport is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _next(self):
        if not self.queue or self.transport is None:
            return
        request = self.queue.pop(0)
        self.current = Responder(self)
        if request is None:
            self.keep_alive = False
            error_json(self.current, 413, f"request body exceeds {self.max_body} bytes")
            return
        asyncio.get_running_loop().create_task(self._run(request, self.current))

    async def _run(self, request: Request, responder: Responder):
        try:
            await self.handler(request, responder)
        except Exception:  # a handler bug must not hang the client
            log.exception("handler failed for %s %s", request.method, request.path)
            if not responder.status:
                error_json(responder, 500, "internal server error")
            elif not responder.finished:
                responder.abort()
        if not responder.finished:
            responder.abort()

    def response_done(self):
        self.current = None
        if not self.keep_alive:
            if self.transport is not None:
                self.transport.close()
            return
        self._next()

    def _reject(self, status: int, message: str):
        self.keep_alive = False
        responder = self.current or Responder(self)
        if not responder.status:
            error_json(responder, status, message)
        elif self.transport is not None:
            self.transport.close()


def error_json(responder: Responder, status: int, message: str, param: str | None = None,
               headers: list[tuple[str, str]] | None = None) -> None:
    responder.send(status, error_body(status, message, param), headers=headers)


async def serve(handler: Handler, host: str, port: int, max_body: int = MAX_BODY_BYTES) -> asyncio.AbstractServer:
    """Listen on host:port; each connection parses requests and runs `handler` one at a time."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Connection(handler, max_body), host, port, reuse_address=True, backlog=1024)
