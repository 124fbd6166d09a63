"""Test helpers: in-process servers on loopback ports, run on their own event loop thread."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serving.emulator.replica import EmulatorConfig, run_replica
from serving.profiles import load_profile


class LoopThread:
    """An event loop in a daemon thread; `call(coro)` runs a coroutine there and returns its result."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class StreamBackend:
    """A raw asyncio stream server on a free loopback port, in its own loop thread: `handle(reader, writer)` plays a
    backend byte for byte (odd or broken ones the real servers never are)."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        self.thread = LoopThread()

        async def start():
            self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            return self.server.sockets[0].getsockname()[1]

        self.port = self.thread.call(start())
        return self

    def __exit__(self, *exc):
        async def stop():  # on the server's own loop: asyncio servers are not thread-safe
            self.server.close()

        self.thread.call(stop())
        self.thread.close()


class EmulatorServer:
    """One emulated replica on a free loopback port (and a GPU endpoint), stopped on exit."""

    def __init__(self, profile: str = "llama-3.1-8b-h100", **config):
        self.profile = load_profile(profile)
        self.config = EmulatorConfig(port=0, gpu_port=0, **config)

    def __enter__(self):
        self.thread = LoopThread()

        async def start():
            self.stop_event = asyncio.Event()
            started = asyncio.get_running_loop().create_future()
            self.task = asyncio.create_task(run_replica(self.profile, self.config, started, self.stop_event))
            return await started

        self.replica, (self.port, self.gpu_port) = self.thread.call(start())
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gpu_url(self) -> str:
        return f"http://127.0.0.1:{self.gpu_port}"

    @property
    def model(self) -> str:
        return self.replica.model_name

    def __exit__(self, *exc):
        async def stop():
            self.stop_event.set()
            await asyncio.wait_for(self.task, 30)

        self.thread.call(stop())
        self.thread.close()


def sse_events(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


def timed_stream(port: int, path: str, body: dict) -> tuple[float, list[float]]:
    """POST in one write on a TCP_NODELAY socket; returns (time to first data event, gaps between events)."""
    payload = json.dumps(body).encode()
    request = (
        b"POST %b HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%b" % (path.encode(), len(payload), payload)
    )
    stamps = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        sock.sendall(request)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            now = time.perf_counter()
            stamps += [now] * (data.count(b"data: {") - data.count(b'"choices": []'))
    return stamps[0] - t0, [b - a for a, b in itertools.pairwise(stamps)]


class GatewayServer:
    """The gateway on a free loopback port, in its own loop thread, in front of given addresses (health checks on)."""

    def __init__(self, addresses: list[str], **config):
        self.backends, self.config = addresses, config

    def __enter__(self):
        from exporters.gateway.config import parse_gateway_config
        from exporters.gateway.service import GatewayService

        self.thread = LoopThread()
        config = parse_gateway_config(
            {
                "host": "127.0.0.1",
                "port": 0,
                **self.config,
                "backends": {"static": self.backends, **self.config.get("backends", {})},
            }
        )

        async def start():
            self.service = GatewayService(config)
            await self.service.start()
            return self.service.port

        self.port = self.thread.call(start())
        self.gateway = self.service.gateway
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_backends(self, backends: list[str]) -> None:
        self.thread.loop.call_soon_threadsafe(self.gateway.set_backends, backends)

    def __exit__(self, *exc):
        self.thread.call(self.service.stop())
        self.thread.close()


def metric_value(text: str, name: str, **labels) -> float:
    """Sum of the samples named `name` whose labels include `labels` in a text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # ../shared/data beside the repository, as CI lays it out


class QuietHandler(BaseHTTPRequestHandler):
    """A stdlib request handler that logs nothing; `reply` answers with a whole body."""

    def reply(
        self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackHttpServer:
    """A stdlib HTTP server with `handler` on a free loopback port, serving from a daemon thread once started."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LoopbackHttpServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cli_exit_code(argv: list[str]) -> int:
    """`headroom ARGV` in this process: its exit status (main always exits)."""
    import pytest

    from headroom.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return stopped.value.code
