"""What the gateway adds, side by side in one run: the emulator direct, through a byte relay, through nginx (a
streaming reverse proxy, buffering off) and through `headroom gateway`.

Latency: open-loop Poisson arrivals at 200 requests/s of short streamed completions, the arms in alternating rounds;
the client times the first event and the end of each response. Throughput: closed loop with many concurrent streams
through each proxy, and each proxy's CPU time per request (from /proc), which gives its ceiling on one core. The
proxies share one core (each alone on it while measured); the emulator and the client share the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.emulator_cost import cpu_seconds, free_port

RATE, ROUND_S, ROUNDS = 200.0, 8.0, 4
THROUGHPUT_S, CONCURRENCY = 8.0, 48
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BODY = json.dumps({"model": MODEL, "prompt": "w " * 16, "max_tokens": 4, "ignore_eos": True, "stream": True}).encode()


def _request(port: int) -> bytes:
    return (
        f"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one streamed request at a time: times its first event and its end (the chunked
    terminator)."""

    def __init__(self):
        self.transport = None
        self.closed = False  # by the server: an idle keep-alive connection past its idle timeout
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
        self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-response"))


class _Client:
    def __init__(self, port: int):
        self.port, self.request = port, _request(port)
        self.idle: list[_Conn] = []

    async def one(self) -> tuple[float, float]:
        """(TTFT, end-to-end) seconds of one request."""
        while self.idle and self.idle[-1].closed:
            self.idle.pop()
        conn = (
            self.idle.pop()
            if self.idle
            else (await asyncio.get_running_loop().create_connection(_Conn, "127.0.0.1", self.port))[1]
        )
        start = time.perf_counter()
        first, end = await asyncio.wait_for(conn.send(self.request), 30)  # a lost answer fails the run, never hangs it
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

    async def closed_loop(self, concurrency: int, seconds: float) -> tuple[float, int]:
        """(completions per second, completions) with `concurrency` streams back to back."""
        end = time.perf_counter() + seconds
        done = 0

        async def worker():
            nonlocal done
            while time.perf_counter() < end:
                await self.one()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start), done


@contextlib.contextmanager
def _process(command: list[str], ready_url: str, cpu: int | None):
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited with {proc.returncode}")
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{' '.join(command[:3])} did not come up")
        yield proc
    finally:
        proc.terminate()
        proc.wait(15)


def headroom(*args: str) -> list[str]:
    return [sys.executable, "-m", "headroom", *args]


_NGINX = """
daemon off; master_process off; worker_processes 1; error_log {dir}/error.log warn; pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off; client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi; keepalive_requests 1000000; keepalive_timeout 75s;
  {body}
}}
"""
PROXY = """
  upstream backend {{ server 127.0.0.1:{upstream}; keepalive 256; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; proxy_cache off;
    }}
  }}
"""
_EVENTS = "".join(
    'data: {{\\"choices\\": [{{\\"text\\": \\"w\\", \\"finish_reason\\": null}}]}}\\n\\n' for _ in range(4)
)
CANNED = """
  server {{
    listen 127.0.0.1:{port};
    location /v1/models {{ default_type application/json; return 200 "{{\\"data\\": [{{\\"id\\": \\"%s\\"}}]}}"; }}
    location / {{ default_type text/event-stream; return 200 "%sdata: [DONE]\\n\\n"; }}
  }}
""" % (MODEL, _EVENTS)  # noqa: UP031  (nginx braces: str.format would need every one doubled)


def nginx_command(folder: Path, server: str, **values) -> list[str]:
    """Debian's nginx in one process with `server` (PROXY: a streaming reverse proxy, buffering off, keep-alive to the
    backend; CANNED: a backend answering every completion with the same 4-event stream at once)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed: `make bench` installs Debian's nginx (apt-get install nginx)")
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(_NGINX.format(dir=folder, body=server.format(**values)))
    return [binary, "-c", str(conf), "-p", str(folder)]


ARMS = ("direct", "relay", "nginx", "gateway")
PROXIES = ("relay", "nginx", "gateway")


def measure() -> dict:
    cores = sorted(os.sched_getaffinity(0))
    shared, own = cores[0], cores[-1]
    ports = {arm: free_port() for arm in ARMS}
    em = ports["direct"]
    with (
        tempfile.TemporaryDirectory(prefix="bench-nginx-") as folder,
        _process(
            headroom("emulate", "--port", str(em), "--cold-start", "0"), f"http://127.0.0.1:{em}/v1/models", shared
        ),
        _process(
            headroom("gateway", "--port", str(ports["gateway"]), "--backend", f"127.0.0.1:{em}"),
            f"http://127.0.0.1:{ports['gateway']}/ready",
            own,
        ) as gateway,
        _process(
            [sys.executable, "-m", "bench.byte_relay", str(ports["relay"]), f"127.0.0.1:{em}"],
            f"http://127.0.0.1:{ports['relay']}/v1/models",
            own,
        ) as relay,
        _process(
            nginx_command(Path(folder), PROXY, port=ports["nginx"], upstream=em),
            f"http://127.0.0.1:{ports['nginx']}/v1/models",
            own,
        ) as nginx,
    ):
        pids = {"relay": relay.pid, "nginx": nginx.pid, "gateway": gateway.pid}
        os.sched_setaffinity(0, {shared})
        try:
            result = asyncio.run(_measure(ports, pids))
            # the check of the layout: the client moved beside the proxies, the emulator alone on its core
            os.sched_setaffinity(0, {own})
            moved = asyncio.run(_measure(ports, pids, rounds=2, throughput=False))
            result["client_beside_proxies"] = {k: moved[k] for k in ("latency", "emulator_ttft_mean")}
            return result
        finally:
            os.sched_setaffinity(0, set(cores))


SATURATION_S, SATURATION_CONNECTIONS = 8.0, 64
_WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
""" % BODY.decode()  # noqa: UP031  (a Lua template; the body holds braces)


def saturation() -> dict:
    """Each proxy's highest throughput on its core: in front of a backend that costs next to nothing (nginx answering
    every completion with the same 4-event stream at once), driven by wrk (64 connections) from the other core; and how
    busy its core was, from /proc (below 100%, the other core bounded it and the figure is a floor)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: `make bench` installs Debian's wrk (apt-get install wrk)")
    cores = sorted(os.sched_getaffinity(0))
    shared, own = cores[0], cores[-1]
    backend, proxy, gw = free_port(), free_port(), free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-saturation-") as folder,
        _process(
            nginx_command(Path(folder) / "backend", CANNED, port=backend),
            f"http://127.0.0.1:{backend}/v1/models",
            shared,
        ),
        _process(
            nginx_command(Path(folder) / "proxy", PROXY, port=proxy, upstream=backend),
            f"http://127.0.0.1:{proxy}/v1/models",
            own,
        ) as nginx,
        _process(
            headroom("gateway", "--port", str(gw), "--backend", f"127.0.0.1:{backend}"),
            f"http://127.0.0.1:{gw}/ready",
            own,
        ) as gateway,
    ):
        script = Path(folder) / "post.lua"
        script.write_text(_WRK_SCRIPT)
        out = {}
        for arm, port, pid in (("backend", backend, None), ("nginx", proxy, nginx.pid), ("gateway", gw, gateway.pid)):
            _wrk(wrk, script, port, 2.0, shared)  # warm
            before, start = (cpu_seconds(pid) if pid else 0.0), time.monotonic()
            rate = _wrk(wrk, script, port, SATURATION_S, shared)
            busy = (cpu_seconds(pid) - before) / (time.monotonic() - start) if pid else float("nan")
            out[arm] = {"rate": rate, "busy": busy}
        return out


def _wrk(wrk: str, script: Path, port: int, seconds: float, cpu: int) -> float:
    """Requests per second wrk reached (one thread, on `cpu`); a run with errors or non-2xx answers fails."""
    run = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{SATURATION_CONNECTIONS}",
            f"-d{seconds:g}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/v1/completions",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        check=True,
    )
    if "Non-2xx" in run.stdout or "Socket errors" in run.stdout:
        raise RuntimeError(f"wrk against port {port} saw failures:\n{run.stdout}")
    return float(next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("Requests/sec:")))


TTFT_HISTOGRAM = "vllm:time_to_first_token_seconds"


def _emulator_ttft(port: int) -> np.ndarray:
    """(sum, count) of the emulator's own TTFT histogram: from when it read a request to its first token."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples = [
        s for family in text_string_to_metric_families(text) if family.name == TTFT_HISTOGRAM for s in family.samples
    ]
    return np.array(
        [sum(s.value for s in samples if s.name == TTFT_HISTOGRAM + suffix) for suffix in ("_sum", "_count")]
    )


async def _measure(ports: dict[str, int], pids: dict[str, int], rounds: int = ROUNDS, throughput: bool = True) -> dict:
    clients = {arm: _Client(ports[arm]) for arm in ARMS}
    rng = np.random.default_rng(0)
    for client in clients.values():  # warm: connections open, code paths hot
        await client.open_loop(RATE, 2.0, rng)
    samples = {arm: [] for arm in clients}
    engine_side = {arm: np.zeros(2) for arm in clients}  # the emulator's own TTFT (sum, count) in each arm's rounds
    cpu = {arm: 0.0 for arm in PROXIES}  # each proxy's CPU seconds over its own rounds
    for _ in range(rounds):
        for arm, client in clients.items():
            before = await asyncio.to_thread(_emulator_ttft, ports["direct"])
            cpu_before = cpu_seconds(pids[arm]) if arm in pids else 0.0
            samples[arm].append(await client.open_loop(RATE, ROUND_S, rng))
            if arm in pids:
                cpu[arm] += cpu_seconds(pids[arm]) - cpu_before
            engine_side[arm] += await asyncio.to_thread(_emulator_ttft, ports["direct"]) - before
    latency = {arm: np.concatenate(arm_rounds) for arm, arm_rounds in samples.items()}
    result = {
        "latency": {arm: values.tolist() for arm, values in latency.items()},
        "emulator_ttft_mean": {arm: float(s / c) for arm, (s, c) in engine_side.items()},
        "cpu_per_request_ms": {arm: 1000.0 * cpu[arm] / len(latency[arm]) for arm in PROXIES},
    }
    if throughput:
        result["throughput"], result["throughput_cpu_ms"] = {}, {}
        for arm in ("direct", "nginx", "gateway"):
            cpu_before = cpu_seconds(pids[arm]) if arm in pids else 0.0
            rate, done = await clients[arm].closed_loop(CONCURRENCY, THROUGHPUT_S)
            result["throughput"][arm] = rate
            if arm in pids:
                result["throughput_cpu_ms"][arm] = 1000.0 * (cpu_seconds(pids[arm]) - cpu_before) / done
    return result


def _split_rows(layout: str, run: dict) -> list[str]:
    """Per arm: client TTFT (p50, p99, mean), the emulator's own mean TTFT and what lies between them, each against direct."""
    lat = {arm: np.array(values)[:, 0] * 1000.0 for arm, values in run["latency"].items()}
    engine = {arm: value * 1000.0 for arm, value in run["emulator_ttft_mean"].items()}
    between = {arm: lat[arm].mean() - engine[arm] for arm in lat}
    p50 = {arm: float(np.median(lat[arm])) for arm in lat}
    p99 = {arm: float(np.quantile(lat[arm], 0.99)) for arm in lat}
    return [
        f"| {layout} | {arm} | {p50[arm] - p50['direct']:+.2f} | {p99[arm] - p99['direct']:+.2f} | "
        f"{lat[arm].mean() - lat['direct'].mean():+.2f} | "
        f"{engine[arm]:.2f} ({engine[arm] - engine['direct']:+.2f}) | {between[arm]:.2f} ({between[arm] - between['direct']:+.2f}) |"
        for arm in ARMS
    ]


def _latency_rows(result: dict) -> list[str]:
    """Client-side TTFT and end-to-end percentiles per arm, and the gateway's added latency against nginx's."""
    lat = {arm: np.array(values) for arm, values in result["latency"].items()}
    q = lambda arm, col, p: float(np.quantile(lat[arm][:, col], p)) * 1000.0
    rows = []
    for col, name in ((0, "TTFT"), (1, "end-to-end")):
        for p, label in ((0.5, "p50"), (0.99, "p99")):
            d = q("direct", col, p)
            added = {arm: q(arm, col, p) - d for arm in PROXIES}
            gap = added["gateway"] - added["nginx"]
            goal = {(0, 0.5): 0.3, (0, 0.99): 1.0}.get((col, p))
            verdict = "" if goal is None else f"<= {goal:g} ms: {'met' if gap <= goal else 'MISSED'}"
            rows.append(
                f"| {name} {label} | {d:.2f} | {added['relay']:+.2f} | {added['nginx']:+.2f} | "
                f"{added['gateway']:+.2f} | {gap:+.2f} | {verdict} |"
            )
    return rows


def _throughput_rows(result: dict) -> list[str]:
    tp, cpu = result["throughput"], result["throughput_cpu_ms"]
    ceiling = {arm: 1000.0 / cpu[arm] for arm in ("nginx", "gateway")}
    ratio = ceiling["gateway"] / ceiling["nginx"]
    return [
        (
            f"| {CONCURRENCY} streams to the emulator (req/s) | {tp['direct']:,.0f} | {tp['nginx']:,.0f} | {tp['gateway']:,.0f} | "
            f"{tp['gateway'] / tp['nginx']:.2f} | |"
        ),
        f"| proxy CPU per request in that run (ms) | | {cpu['nginx']:.3f} | {cpu['gateway']:.3f} | | |",
        (
            f"| ceiling on one core, 1 / CPU per request (req/s) | | {ceiling['nginx']:,.0f} | {ceiling['gateway']:,.0f} | "
            f"{ratio:.2f} | >= 0.50: {'met' if ratio >= 0.5 else 'MISSED'} |"
        ),
        (
            f"| proxy CPU per request at {RATE:g} req/s, open loop (ms) | | {result['cpu_per_request_ms']['nginx']:.3f} | "
            f"{result['cpu_per_request_ms']['gateway']:.3f} | | |"
        ),
    ]


def _saturation_rows(sat: dict) -> list[str]:
    ratio = sat["gateway"]["rate"] / sat["nginx"]["rate"]
    floor = " (a floor: nginx's core was not saturated)" if sat["nginx"]["busy"] < 0.95 else ""
    return [
        (
            f"| requests/s | {sat['backend']['rate']:,.0f} | {sat['nginx']['rate']:,.0f} | {sat['gateway']['rate']:,.0f} | "
            f"{ratio:.3f}{floor} | >= 0.50: {'met' if ratio >= 0.5 else 'MISSED'} |"
        ),
        f"| proxy core busy | | {sat['nginx']['busy']:.0%} | {sat['gateway']['busy']:.0%} | | |",
    ]


def section(result: dict) -> str:
    lat = result["latency"]
    split = _split_rows("client beside the emulator (above)", result) + _split_rows(
        "client beside the proxies, the emulator alone", result["client_beside_proxies"]
    )
    counts = ", ".join(f"{arm} {len(lat[arm])}" for arm in ARMS)
    return "\n".join(
        [
            "### Gateway overhead against nginx and direct",
            "",
            (
                f"`python -m bench gateway`: one emulator replica (Llama-3.1-8B on H100 profile), streamed completions of 16 prompt "
                f"and 4 output tokens. Latency: open-loop Poisson arrivals at {RATE:g} requests/s, {ROUNDS} alternating rounds of "
                f"{ROUND_S:g} s per arm ({counts} requests): direct; through a byte relay with no HTTP parsing "
                "(`bench/byte_relay.py`, the floor of any proxy in this layout: two more loopback hops and wake-ups per response); "
                "through Debian's nginx as a streaming reverse proxy (`proxy_buffering off`, keep-alive to the backend, one "
                "worker process); and through `headroom gateway`. The client times the first event carrying choices and the end "
                "of the response. The proxies sit on a core of their own (only the arm being measured has traffic), the emulator "
                "and the client on the other. Throughput: "
                f"{CONCURRENCY} concurrent streams back to back for {THROUGHPUT_S:g} s through each; the emulator bounds it, so "
                "each proxy's CPU time per request in that run (from /proc) gives its own ceiling on one core."
            ),
            "",
            (
                "| client-side latency | direct (ms) | relay, added (ms) | nginx, added (ms) | gateway, added (ms) | "
                "gateway minus nginx (ms) | goal |"
            ),
            "|---|---|---|---|---|---|---|",
            *_latency_rows(result),
            "",
            "| throughput | direct | nginx | gateway | gateway / nginx | goal |",
            "|---|---|---|---|---|---|",
            *_throughput_rows(result),
            "",
            (
                "Highest throughput on one core, saturated: each proxy alone on its core in front of a backend that costs next to "
                "nothing (a second nginx answering every completion with the same 4-event stream at once), driven by wrk with "
                f"{SATURATION_CONNECTIONS} connections for {SATURATION_S:g} s from the other core, where the backend also runs. "
                "The proxy's core use over the run says whether the proxy or the other core set the figure."
            ),
            "",
            "| saturated, canned backend | backend direct | nginx | gateway | gateway / nginx | goal |",
            "|---|---|---|---|---|---|",
            *_saturation_rows(result["saturation"]),
            "",
            (
                "Where the added TTFT comes from: the emulator's own mean TTFT in each arm's rounds (its "
                "`vllm:time_to_first_token_seconds` histogram, from when it read the request to its first token) beside the "
                "client's; what lies between them is the wire and, for the proxies, the proxy itself. Then the same processes "
                "again (2 rounds per arm) with the client moved to the proxies' core and the emulator alone on its own. With only "
                "2 cores, each layout puts the client beside something: beside the emulator, the emulator answers the requests "
                "that come from the other core slower than those sent from its own core (the bare relay shows it as much as the "
                "proxies); beside the proxies, the client and the proxy take turns on one core."
            ),
            "",
            (
                "| layout | arm | TTFT p50 vs direct (ms) | TTFT p99 vs direct (ms) | TTFT mean vs direct (ms) | emulator's own TTFT "
                "mean (ms, vs direct) | between them (ms, vs direct) |"
            ),
            "|---|---|---|---|---|---|---|",
            *split,
        ]
    )


def gateway_section() -> str:
    result = measure()
    result["saturation"] = saturation()
    return section(result)


if __name__ == "__main__":
    print(gateway_section())
