"""HTTP/1.1 to the backends over pooled keep-alive connections, parsed with httptools, body bytes handed on as they
arrive: each read of a streamed response is written to the client from the protocol callback itself, with no task
wake-up per chunk (the way the emulator writes its own streams). Backpressure: a client that reads slowly pauses the
reads from its backend.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

import httptools


class Sink(Protocol):
    """Where a response goes, as it is parsed."""

    def on_headers(self, status: int, headers: list[tuple[str, str]]) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_complete(self) -> None: ...

    def on_error(self, error: Exception) -> None: ...


class UpstreamError(ConnectionError):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self, pool: "UpstreamPool", address: str):
        self.pool, self.address = pool, address
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: Sink | None = None
        self.headers: list[tuple[str, str]] = []
        self.keep_alive = True
        self.timer: asyncio.TimerHandle | None = None
        self.reused = False  # it served a response before this request

    # ---- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        if self.timer is not None:  # the first byte came: from here the client's own pace rules
            self.timer.cancel()
            self.timer = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(UpstreamError(f"{self.address}: malformed HTTP response: {err}"))

    def connection_lost(self, exc):
        self.transport = None
        self._fail(UpstreamError(f"{self.address}: connection lost" + (f" ({exc})" if exc else "")))

    # ---- httptools callbacks ---------------------------------------------------------
    def on_header(self, name: bytes, value: bytes):
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self):
        self.keep_alive = self.parser.should_keep_alive()
        if self.sink is not None:
            self.sink.on_headers(self.parser.get_status_code(), self.headers)

    def on_body(self, body: bytes):
        if self.sink is not None:
            self.sink.on_body(body)

    def on_message_complete(self):
        sink, self.sink = self.sink, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if sink is not None:
            sink.on_complete()
        if self.keep_alive and self.transport is not None:
            self.reused = True
            self.pool.give_back(self)
        else:
            self.close()

    # ---- requests ----------------------------------------------------------------------
    def send(self, request: bytes, sink: Sink, first_byte_timeout_s: float) -> None:
        self.sink, self.headers = sink, []
        self.parser = httptools.HttpResponseParser(self)
        self.timer = asyncio.get_running_loop().call_later(
            first_byte_timeout_s, self._fail, UpstreamError(f"{self.address}: no response within {first_byte_timeout_s:g} s"))
        self.transport.write(request)

    def pause(self, paused: bool) -> None:
        if self.transport is not None:
            (self.transport.pause_reading if paused else self.transport.resume_reading)()

    def _fail(self, error: Exception) -> None:
        sink, self.sink = self.sink, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.close()
        if sink is not None:
            sink.on_error(error)

    def close(self) -> None:
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Idle keep-alive connections per backend address; a new one is opened when none is idle."""

    def __init__(self, connect_timeout_s: float):
        self.connect_timeout_s = connect_timeout_s
        self.idle: dict[str, list[_Connection]] = defaultdict(list)

    async def connection(self, address: str, fresh: bool = False) -> _Connection:
        """An idle connection to `address` (unless `fresh`), else a new one."""
        idle = self.idle[address]
        while idle and not fresh:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(lambda: _Connection(self, address), host, int(port)),
                                             self.connect_timeout_s)
        except asyncio.TimeoutError:
            raise UpstreamError(f"{address}: no connection within {self.connect_timeout_s:g} s") from None
        except OSError as err:
            raise UpstreamError(f"{address}: {err.strerror or err}") from None
        return conn

    def give_back(self, conn: _Connection) -> None:
        self.idle[conn.address].append(conn)

    def forget(self, conn: _Connection) -> None:
        idle = self.idle.get(conn.address)
        if idle and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for conns in self.idle.values():
            for conn in list(conns):
                conn.close()
        self.idle.clear()
