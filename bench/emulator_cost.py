"""Emulator cost: streamed tokens per CPU-second of one emulator process at a fixed number of concurrent streams."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Stream(asyncio.Protocol):
    """A cheap client: one keep-alive connection sending streamed completions back to back, counting events."""

    def __init__(self, request: bytes, counter: list[int]):
        self.request, self.counter = request, counter
        self.transport = None
        self.tail = b""
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes):
        self.counter[0] += data.count(b'"text": "')
        chunk = self.tail + data
        if b"data: [DONE]" in chunk and chunk.endswith(b"0\r\n\r\n"):
            self.counter[1] += 1
            self.tail = b""
            if not self.counter[2]:
                self.transport.write(self.request)
            else:
                self.transport.close()
        else:
            self.tail = chunk[-32:]

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(None)


async def _drive(port: int, model: str, streams: int, seconds: float, pid: int) -> dict:
    import json

    body = json.dumps(
        {"model": model, "prompt": "w " * 128, "max_tokens": 256, "ignore_eos": True, "stream": True}
    ).encode()
    request = (
        b"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
        % (len(body), body)
    )
    counter = [0, 0, 0]  # tokens, completed requests, stop flag
    loop = asyncio.get_running_loop()
    clients = [
        (await loop.create_connection(lambda: _Stream(request, counter), "127.0.0.1", port))[1] for _ in range(streams)
    ]
    await asyncio.sleep(min(5.0, seconds / 3))  # warm up to steady state
    tokens0, cpu0, t0 = counter[0], cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    tokens, cpu, wall = counter[0] - tokens0, cpu_seconds(pid) - cpu0, time.perf_counter() - t0
    counter[2] = 1
    for c in clients:
        c.transport.close()
    return {
        "streams": streams,
        "seconds": round(wall, 1),
        "tokens": tokens,
        "emulator_cpu_s": round(cpu, 2),
        "tokens_per_s": tokens / wall,
        "tokens_per_cpu_s": tokens / cpu if cpu else float("inf"),
        "emulator_cpu_share": cpu / wall,
    }


def measure(levels=(4, 64, 256), seconds: float = 15.0, profile: str = "llama-3.1-8b-h100") -> list[dict]:
    rows = []
    for streams in levels:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "headroom", "emulate", "--port", str(port), "--profile", profile],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port)
            from serving.profiles import load_profile

            model = load_profile(profile).model.name
            try:
                import uvloop

                runner = uvloop.run
            except ImportError:
                runner = asyncio.run
            rows.append(runner(_drive(port, model, streams, seconds, proc.pid)))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return rows


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"emulator did not listen on {port}")
