"""What the gateway adds: the emulator direct against the emulator through `headroom gateway`, side by side in one run.

Latency: open-loop Poisson arrivals at 200 requests/s of short streamed completions, direct and through the gateway in
alternating rounds; the client times the first event and the end of each response. Throughput: closed loop with
many concurrent streams, the highest completion rate direct and through the gateway, the gateway process on a core
of its own (the emulator and the client share the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.emulator_cost import free_port

RATE, ROUND_S, ROUNDS = 200.0, 8.0, 4
THROUGHPUT_S, CONCURRENCY = 8.0, 48
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BODY = json.dumps({"model": MODEL, "prompt": "w " * 16, "max_tokens": 4, "ignore_eos": True, "stream": True}).encode()


def _request(port: int) -> bytes:
    return (f"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(BODY)}\r\n\r\n").encode() + BODY


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one streamed request at a time: times its first event and its end (the chunked
    terminator)."""

    def __init__(self):
        self.transport = None
        self.done: asyncio.Future | None = None
        self.first = None
        self.tail = b""

    def connection_made(self, transport):
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future:
        self.first, self.tail = None, b""
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes):
        now = time.perf_counter()
        if self.first is None and b"choices" in data:
            self.first = now
        self.tail = (self.tail + data)[-16:]
        if self.tail.endswith(b"0\r\n\r\n") and self.done is not None and not self.done.done():
            self.done.set_result((self.first or now, now))

    def connection_lost(self, exc):
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-response"))


class _Client:
    def __init__(self, port: int):
        self.port, self.request = port, _request(port)
        self.idle: list[_Conn] = []

    async def one(self) -> tuple[float, float]:
        """(TTFT, end-to-end) seconds of one request."""
        conn = self.idle.pop() if self.idle else (await asyncio.get_running_loop().create_connection(
            _Conn, "127.0.0.1", self.port))[1]
        start = time.perf_counter()
        first, end = await conn.send(self.request)
        self.idle.append(conn)
        return first - start, end - start

    async def open_loop(self, rate: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
        loop = asyncio.get_running_loop()
        gaps = rng.exponential(1.0 / rate, int(rate * seconds * 1.2))
        planned = np.cumsum(gaps)
        planned = planned[planned < seconds]
        start = loop.time()
        tasks = []
        for at in planned:
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one()))
        return np.array(await asyncio.gather(*tasks))

    async def closed_loop(self, concurrency: int, seconds: float) -> float:
        """Completions per second with `concurrency` streams back to back."""
        end = time.perf_counter() + seconds
        done = 0

        async def worker():
            nonlocal done
            while time.perf_counter() < end:
                await self.one()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


@contextlib.contextmanager
def _process(args: list[str], ready_url: str, cpu: int | None, module: str = "headroom"):
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if cpu is not None:
            os.sched_setaffinity(proc.pid, {cpu})
        for _ in range(150):
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except urllib.error.HTTPError:  # answering (the relay passes the backend's answers on)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"headroom {args[0]} did not come up")
        yield proc
    finally:
        proc.terminate()
        proc.wait(15)


def measure() -> dict:
    cores = sorted(os.sched_getaffinity(0))
    shared, own = cores[0], cores[-1]
    em_port, gw_port, relay_port = free_port(), free_port(), free_port()
    with _process(["emulate", "--port", str(em_port), "--cold-start", "0"], f"http://127.0.0.1:{em_port}/v1/models", shared), \
            _process(["gateway", "--port", str(gw_port), "--backend", f"127.0.0.1:{em_port}"], f"http://127.0.0.1:{gw_port}/ready", own), \
            _process([str(relay_port), f"127.0.0.1:{em_port}"], f"http://127.0.0.1:{relay_port}/v1/models", own, "bench.byte_relay"):
        os.sched_setaffinity(0, {shared})
        try:
            result = asyncio.run(_measure(em_port, gw_port, relay_port))
            # the check of the layout: the client moved beside the proxies, the emulator alone on its core
            os.sched_setaffinity(0, {own})
            moved = asyncio.run(_measure(em_port, gw_port, relay_port, rounds=2, throughput=False))
            result["client_beside_proxies"] = {k: moved[k] for k in ("latency", "emulator_ttft_mean")}
            return result
        finally:
            os.sched_setaffinity(0, set(cores))


TTFT_HISTOGRAM = "vllm:time_to_first_token_seconds"


def _emulator_ttft(port: int) -> np.ndarray:
    """(sum, count) of the emulator's own TTFT histogram: from when it read a request to its first token."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples = [s for family in text_string_to_metric_families(text) if family.name == TTFT_HISTOGRAM for s in family.samples]
    return np.array([sum(s.value for s in samples if s.name == TTFT_HISTOGRAM + suffix) for suffix in ("_sum", "_count")])


async def _measure(em_port: int, gw_port: int, relay_port: int, rounds: int = ROUNDS, throughput: bool = True) -> dict:
    clients = {"direct": _Client(em_port), "relay": _Client(relay_port), "gateway": _Client(gw_port)}
    rng = np.random.default_rng(0)
    for client in clients.values():  # warm: connections open, code paths hot
        await client.open_loop(RATE, 2.0, rng)
    samples = {arm: [] for arm in clients}
    engine_side = {arm: np.zeros(2) for arm in clients}  # the emulator's own TTFT (sum, count) in each arm's rounds
    for _ in range(rounds):
        for arm, client in clients.items():
            before = await asyncio.to_thread(_emulator_ttft, em_port)
            samples[arm].append(await client.open_loop(RATE, ROUND_S, rng))
            engine_side[arm] += await asyncio.to_thread(_emulator_ttft, em_port) - before
    latency = {arm: np.concatenate(arm_rounds) for arm, arm_rounds in samples.items()}
    result = {"latency": {arm: values.tolist() for arm, values in latency.items()},
              "emulator_ttft_mean": {arm: float(s / c) for arm, (s, c) in engine_side.items()}}
    if throughput:
        result["throughput"] = {"direct": await clients["direct"].closed_loop(CONCURRENCY, THROUGHPUT_S),
                                "gateway": await clients["gateway"].closed_loop(CONCURRENCY, THROUGHPUT_S)}
    return result


def _split_rows(layout: str, run: dict) -> list[str]:
    """Per arm: client TTFT (p50, p99, mean), the emulator's own mean TTFT and what lies between them, each against direct."""
    lat = {arm: np.array(values)[:, 0] * 1000.0 for arm, values in run["latency"].items()}
    engine = {arm: value * 1000.0 for arm, value in run["emulator_ttft_mean"].items()}
    between = {arm: lat[arm].mean() - engine[arm] for arm in lat}
    p50 = {arm: float(np.median(lat[arm])) for arm in lat}
    p99 = {arm: float(np.quantile(lat[arm], 0.99)) for arm in lat}
    return [f"| {layout} | {arm} | {p50[arm] - p50['direct']:+.2f} | {p99[arm] - p99['direct']:+.2f} | "
            f"{lat[arm].mean() - lat['direct'].mean():+.2f} | "
            f"{engine[arm]:.2f} ({engine[arm] - engine['direct']:+.2f}) | {between[arm]:.2f} ({between[arm] - between['direct']:+.2f}) |"
            for arm in ("direct", "relay", "gateway")]


def section(result: dict) -> str:
    lat = {arm: np.array(values) for arm, values in result["latency"].items()}
    q = lambda arm, col, p: float(np.quantile(lat[arm][:, col], p)) * 1000.0
    rows = []
    for col, name in ((0, "TTFT"), (1, "end-to-end")):
        for p, label in ((0.5, "p50"), (0.99, "p99")):
            d, r, g = q("direct", col, p), q("relay", col, p), q("gateway", col, p)
            goal = {(0, 0.5): "<= 0.5 ms", (0, 0.99): "<= 2 ms"}.get((col, p), "")
            rows.append(f"| {name} {label} | {d:.2f} | {r:.2f} ({r - d:+.2f}) | {g:.2f} | {g - d:+.2f} | {g - r:+.2f} | {goal} |")
    tp = result["throughput"]
    ratio = tp["gateway"] / tp["direct"]
    split = _split_rows("client beside the emulator (above)", result) + _split_rows(
        "client beside the proxies, the emulator alone", result["client_beside_proxies"])
    return "\n".join([
        "### Gateway overhead against direct", "",
        f"`python -m bench gateway`: one emulator replica (Llama-3.1-8B on H100 profile), streamed completions of 16 prompt "
        f"and 4 output tokens. Latency: open-loop Poisson arrivals at {RATE:g} requests/s, {ROUNDS} alternating rounds of "
        f"{ROUND_S:g} s direct, through a byte relay and through `headroom gateway` ({len(lat['direct'])}, {len(lat['relay'])} and {len(lat['gateway'])} requests); the "
        "client times the first event carrying choices and the end of the response. Beside them, in the same rounds, a byte "
        "relay with no HTTP parsing placed where the gateway is (`bench/byte_relay.py`): the floor of any proxy in this "
        "layout, two more loopback hops and two more process wake-ups per response. Throughput: "
        f"{CONCURRENCY} concurrent streams back to back for {THROUGHPUT_S:g} s each way; the gateway on a core of its own, the "
        "emulator and the client on the other.", "",
        "| client-side latency | direct (ms) | byte relay (ms, added) | through the gateway (ms) | added (ms) | added over the relay (ms) | goal (added) |",
        "|---|---|---|---|---|---|---|",
        *rows, "",
        "Where the added TTFT comes from: the emulator's own mean TTFT in each arm's rounds (its "
        "`vllm:time_to_first_token_seconds` histogram, from when it read the request to its first token) beside the "
        "client's; what lies between them is the wire and, for the relay and the gateway, the proxy itself. Then the "
        "same processes again (2 rounds per arm) with the client moved to the proxies' core and the emulator alone on "
        "its own. With only 2 cores, each layout puts the client beside something: beside the emulator, the emulator "
        "answers the requests that come from the other core slower than those sent from its own core (the bare relay "
        "shows it as much as the gateway); beside the proxies, the client and the proxy take turns on one core.", "",
        "| layout | arm | TTFT p50 vs direct (ms) | TTFT p99 vs direct (ms) | TTFT mean vs direct (ms) | emulator's own TTFT "
        "mean (ms, vs direct) | between them (ms, vs direct) |", "|---|---|---|---|---|---|---|", *split, "",
        "| highest throughput | direct (req/s) | through the gateway (req/s) | ratio | goal |", "|---|---|---|---|---|",
        f"| {CONCURRENCY} concurrent streams | {tp['direct']:,.0f} | {tp['gateway']:,.0f} | {ratio:.2f} | >= 0.80 |",
    ])


def gateway_section() -> str:
    return section(measure())


if __name__ == "__main__":
    print(gateway_section())
