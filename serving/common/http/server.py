"""The emulator's asyncio HTTP/1.1 server on httptools' parser, with synchronous streaming writes.

Why not a framework: the emulator streams one SSE event per token for hundreds of streams and must cost far less CPU
than the load it serves. Writing from the engine loop straight into each connection's transport avoids a task
wake-up per token, which ASGI servers cannot avoid. It refuses what the gateway's listener refuses (the same
`ListenerLimits`): oversized request lines, headers and bodies, slow headers and bodies, idle connections.

Glossary: a connection holds a queue of parsed requests (pipelining) answered one at a time, in order; a request's
own keep-alive decides whether the connection closes after its answer; a refusal (a request the parser or a limit
rejected) is answered in its turn, then the connection closes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

from serving.common.http.errors import error_body
from serving.common.http.limits import ListenerLimits

log = logging.getLogger(__name__)

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_MAX_PIPELINED = 32  # parsed requests waiting their turn on one connection before reading pauses


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    received_s: float = 0.0  # time.monotonic() when its last byte arrived
    keep_alive: bool = True  # the connection may carry another request after this one's answer
    peer: str = ""  # the client's address

    @property
    def from_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer).is_loopback
        except ValueError:
            return False


@dataclass
class _Refusal:
    """A request refused before its handler: answered in its turn, then the connection closes."""

    status: int
    message: str
    keep_alive: bool = False
    method: str = "GET"


class _Refuse(Exception):
    """Raised from a parser callback to stop parsing: what to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


Handler = Callable[[Request, "Responder"], Awaitable[None]]


@dataclass
class _Pending:
    url: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    header_count: int = 0
    body: list[bytes] = field(default_factory=list)
    size: int = 0


class Responder:
    """Writes one response: whole (`send`) or streamed in chunks (`start_stream`, `write`, `end`). Every call after
    the response ended is a no-op, so a late writer (the engine loop) can never break the connection's next answer."""

    __slots__ = (
        "_conn",
        "aborted",
        "bytes_sent",
        "finished",
        "head_only",
        "keep_alive",
        "on_close",
        "status",
        "streaming",
    )

    def __init__(self, conn: _Connection, keep_alive: bool = True, head_only: bool = False):
        self._conn = conn
        self.keep_alive, self.head_only = keep_alive, head_only
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
        return self._conn.paused

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if not self.keep_alive:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        if self.status:
            return
        self.status = status
        head = self._head(
            status, [("content-type", content_type), ("content-length", str(len(body))), *(headers or [])]
        )
        self._conn.write(head if self.head_only else head + body)
        self.bytes_sent += 0 if self.head_only else len(body)
        self._done()

    def start_stream(
        self, status: int = 200, content_type: str = "text/event-stream", headers: list[tuple[str, str]] | None = None
    ) -> None:
        if self.status:
            return
        self.status = status
        self.streaming = True
        hdrs = [
            ("content-type", content_type),
            ("transfer-encoding", "chunked"),
            ("cache-control", "no-cache"),
            *(headers or []),
        ]
        self._conn.write(self._head(status, hdrs))

    def write(self, data: bytes) -> None:
        """One chunk of a streamed body; a no-op once the client is gone or the response ended."""
        if data and self.streaming and not self.finished:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
            self.bytes_sent += len(data)

    def end(self) -> None:
        if self.streaming and not self.finished:
            self._conn.write(b"0\r\n\r\n")
            self._done()

    def abort(self) -> None:
        """Cut the connection (a streamed body that cannot be finished cleanly)."""
        if not self.finished:
            self.finished = self.aborted = True
            self._conn.close()

    async def drain(self) -> None:
        await self._conn.drain()

    def _done(self) -> None:
        self.finished = True
        self._conn.response_done(self)


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler, limits: ListenerLimits, server: Server):
        self.handler, self.limits, self.server = handler, limits, server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending = _Pending()
        self.queue: deque[Request | _Refusal] = deque()
        self.current: Responder | None = None
        self.broken = False  # the parser stopped: nothing more is read from this connection
        self.paused = False
        self._reading_paused = False
        self._drain_waiters: list[asyncio.Future] = []
        self._timer: asyncio.TimerHandle | None = None
        self.peer = ""

    # ---- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.server.connections.add(self)
        if len(self.server.connections) > self.limits.max_connections:
            return self.close()
        self._arm(self.limits.header_timeout_s)  # a new connection owes its first request's headers by then

    def data_received(self, data: bytes):
        if self.broken:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except httptools.HttpParserCallbackError as err:
            cause = err.__context__
            if isinstance(cause, _Refuse):
                self._refuse(cause.status, cause.message)
            else:
                log.exception("request parsing failed")
                self._refuse(400, "malformed HTTP request")
        except httptools.HttpParserError as err:
            self._refuse(400, f"malformed HTTP request: {err}")

    def connection_lost(self, exc):
        self.transport = None
        self.server.connections.discard(self)
        self._disarm()
        self.queue.clear()
        current = self.current
        if current is not None and (not current.finished or current.aborted) and current.on_close is not None:
            current.on_close()
        self._wake_drainers()

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self._wake_drainers()

    # ---- httptools callbacks ---------------------------------------------------------
    def on_message_begin(self):
        self.pending = _Pending()
        if self.current is None and not self.queue:
            self._arm(self.limits.header_timeout_s)

    def on_url(self, url: bytes):
        self.pending.url += url
        if len(self.pending.url) > self.limits.max_url_bytes:
            raise _Refuse(414, f"request target longer than {self.limits.max_url_bytes} bytes")

    def on_header(self, name: bytes, value: bytes):
        p = self.pending
        p.header_count += 1
        if p.header_count > self.limits.max_headers:
            raise _Refuse(431, f"more than {self.limits.max_headers} header fields")
        if len(name) + len(value) > self.limits.max_header_bytes:
            raise _Refuse(431, f"a header field is longer than {self.limits.max_header_bytes} bytes")
        p.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self):
        headers, limits = self.pending.headers, self.limits
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            raise _Refuse(413, f"request body exceeds {limits.max_body_bytes} bytes")
        expect = headers.get("expect")
        if expect is not None:
            if expect.strip().lower() != "100-continue":
                raise _Refuse(417, f"unsupported expectation {expect[:64]!r}: only 100-continue")
            if self.current is None and not self.queue:  # an interim answer may not cut into an earlier response
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.current is None and not self.queue:
            self._arm(limits.body_timeout_s)

    def on_body(self, body: bytes):
        p = self.pending
        p.size += len(body)
        if p.size > self.limits.max_body_bytes:
            raise _Refuse(413, f"request body exceeds {self.limits.max_body_bytes} bytes")
        p.body.append(body)

    def on_message_complete(self):
        p = self.pending
        try:
            url = httptools.parse_url(p.url)
        except httptools.HttpParserInvalidURLError:
            raise _Refuse(400, "the request target is not a path") from None
        self.queue.append(
            Request(
                method=self.parser.get_method().decode(),
                path=url.path.decode("latin-1"),
                query=(url.query or b"").decode("latin-1"),
                headers=p.headers,
                body=b"".join(p.body),
                received_s=time.monotonic(),
                keep_alive=self.parser.should_keep_alive(),
                peer=self.peer,
            )
        )
        self.pending = _Pending()
        if not self.queue[-1].keep_alive:
            self.broken = True  # its answer is the last: read no further
        if len(self.queue) >= _MAX_PIPELINED and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        if self.current is None:
            self._next()

    # ---- responses ---------------------------------------------------------------------
    def write(self, data: bytes):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def drain(self):
        if self.paused and self.transport is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _wake_drainers(self) -> None:
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def _next(self):
        if not self.queue or self.transport is None:
            return
        self._disarm()
        item = self.queue.popleft()
        if self._reading_paused and len(self.queue) < _MAX_PIPELINED // 2:
            self._reading_paused = False
            self.transport.resume_reading()
        self.current = Responder(self, item.keep_alive, head_only=item.method == "HEAD")
        if isinstance(item, _Refusal):
            self.current.send(item.status, error_body(item.status, item.message))
            return
        asyncio.get_running_loop().create_task(self._run(item, self.current))

    async def _run(self, request: Request, responder: Responder):
        try:
            await self.handler(request, responder)
        except Exception:  # a handler bug must not hang the client
            log.exception("handler failed for %s %s", request.method, request.path)
            if not responder.status:
                responder.send(500, error_body(500, "internal server error"))
        if not responder.finished:
            responder.abort()

    def response_done(self, responder: Responder):
        if responder is not self.current:
            return
        self.current = None
        if not responder.keep_alive:
            return self.close()
        if self.queue:
            return self._next()
        self._arm(self.limits.idle_timeout_s)

    def _refuse(self, status: int, message: str):
        """Stop parsing; answer the refusal after what is already queued, then close."""
        self.broken = True
        if self.transport is not None:
            self.transport.pause_reading()
        self.queue.append(_Refusal(status, message))
        if self.current is None:
            self._next()

    # ---- deadlines -------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        """No request, or a request's headers or body, within its time: 408 if a request had begun, else close."""
        self._timer = None
        if self.current is not None or self.queue:
            return
        if self.pending.url or self.pending.header_count:
            self.broken = True
            self.current = Responder(self, keep_alive=False)
            self.current.send(408, error_body(408, "the request did not arrive in time"))
        else:
            self.close()


class Server:
    """The listening socket and its open connections."""

    def __init__(self, handler: Handler, limits: ListenerLimits):
        self.handler, self.limits = handler, limits
        self.connections: set[_Connection] = set()
        self.asyncio_server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        return self.asyncio_server.sockets[0].getsockname()[1]

    def close(self) -> None:
        self.asyncio_server.close()
        for conn in list(self.connections):
            conn.close()


def error_json(
    responder: Responder,
    status: int,
    message: str,
    param: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    responder.send(status, error_body(status, message, param), headers=headers)


async def serve(handler: Handler, host: str, port: int, limits: ListenerLimits | None = None) -> Server:
    """Listen on host:port; each connection parses requests and runs `handler` on them one at a time, in order."""
    server = Server(handler, limits or ListenerLimits())
    loop = asyncio.get_running_loop()
    server.asyncio_server = await loop.create_server(
        lambda: _Connection(handler, server.limits, server), host, port, reuse_address=True, backlog=1024
    )
    return server
