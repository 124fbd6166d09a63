"""A local fleet of emulator processes on loopback: scale up through cold starts, retire by draining, file_sd."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pydantic import Field

from serving.common.child_process import die_with_parent
from serving.common.strict import Strict
from serving.fleet.state import ReplicaState

log = logging.getLogger("headroom.fleet")


class FleetConfig(Strict):
    profile: str = "llama-3.1-8b-h100"
    cold_start_s: float = Field(5.0, ge=0)
    host: str = "127.0.0.1"
    sd_dir: Path | None = None  # where replicas.json and gpus.json (Prometheus file_sd) are written
    log_dir: Path | None = None
    poll_interval_s: float = Field(0.25, gt=0)
    drain_timeout_s: float = Field(600.0, gt=0)
    extra_args: list[str] = []


@dataclass(eq=False)
class Replica:
    name: str
    port: int
    gpu_port: int
    process: asyncio.subprocess.Process
    state: ReplicaState = ReplicaState.STARTING
    exit_code: int | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def file_sd_groups(replicas: list[Replica], host: str, gpu: bool) -> list[dict]:
    """Prometheus file_sd target groups: one per live replica, labelled with its name and state."""
    return [
        {
            "targets": [f"{host}:{r.gpu_port if gpu else r.port}"],
            "labels": {"replica": r.name, "replica_state": r.state.value},
        }
        for r in replicas
        if r.state is not ReplicaState.EXITED
    ]


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class LocalFleet:
    """Owns emulator processes. `on_change(ready_addresses)` tells the router whom to send traffic to."""

    def __init__(self, config: FleetConfig, on_change: Callable[[list[str]], None] | None = None):
        self.config = config
        self.on_change = on_change or (lambda addresses: None)
        self.replicas: list[Replica] = []
        self._counter = 0
        self._session: aiohttp.ClientSession | None = None
        self._watch: asyncio.Task | None = None
        self._changed = asyncio.Event()
        if config.sd_dir:
            config.sd_dir.mkdir(parents=True, exist_ok=True)
            self._write_sd()

    # ---- views -----------------------------------------------------------------------
    def by_state(self, state: ReplicaState) -> list[Replica]:
        return [r for r in self.replicas if r.state is state]

    def status(self) -> dict:
        return {
            "ready": len(self.by_state(ReplicaState.READY)),
            "starting": len(self.by_state(ReplicaState.STARTING)),
            "stopping": len(self.by_state(ReplicaState.STOPPING)),
            "replicas": [
                {
                    "name": r.name,
                    "address": r.address,
                    "gpu_address": f"127.0.0.1:{r.gpu_port}",
                    "state": r.state.value,
                    "pid": r.process.pid,
                }
                for r in self.replicas
                if r.state is not ReplicaState.EXITED
            ],
        }

    @property
    def active(self) -> list[Replica]:
        """Replicas that count toward the desired size: starting or ready."""
        return [r for r in self.replicas if r.state in (ReplicaState.STARTING, ReplicaState.READY)]

    # ---- actions ---------------------------------------------------------------------
    async def scale(self, n: int) -> None:
        """Start replicas up to n, or retire the surplus (starting ones first, then the newest ready ones)."""
        if n < 0:
            raise ValueError(f"replica count must be >= 0, got {n}")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
            self._watch = asyncio.create_task(self._watch_loop())
        active = self.active
        for _ in range(n - len(active)):
            await self._start_one()
        surplus = len(active) - n
        if surplus > 0:
            starting = [r for r in active if r.state is ReplicaState.STARTING][::-1]
            ready = [r for r in active if r.state is ReplicaState.READY][::-1]
            for replica in (starting + ready)[:surplus]:
                self._retire(replica)
        self._publish()

    async def _start_one(self) -> None:
        self._counter += 1
        name = f"replica-{self._counter}"
        port, gpu_port = free_port(self.config.host), free_port(self.config.host)
        cmd = [
            sys.executable,
            "-m",
            "headroom",
            "emulate",
            "--host",
            self.config.host,
            "--port",
            str(port),
            "--gpu-port",
            str(gpu_port),
            "--profile",
            self.config.profile,
            "--cold-start",
            str(self.config.cold_start_s),
            "--seed",
            str(self._counter),
            *self.config.extra_args,
        ]
        out = asyncio.subprocess.DEVNULL
        if self.config.log_dir:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.config.log_dir / f"{name}.log", "ab")  # noqa: ASYNC230, SIM115
        process = await asyncio.create_subprocess_exec(
            *cmd, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        if out is not asyncio.subprocess.DEVNULL:
            out.close()
        replica = Replica(name, port, gpu_port, process)
        self.replicas.append(replica)
        asyncio.create_task(self._reap(replica))
        log.info("started %s (pid %d) on port %d, GPU endpoint %d", name, process.pid, port, gpu_port)

    def _retire(self, replica: Replica) -> None:
        """Take it out of rotation first, then ask it to drain (SIGTERM: finish in-flight, then exit)."""
        replica.state = ReplicaState.STOPPING
        log.info("retiring %s (pid %d)", replica.name, replica.process.pid)
        if replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
            asyncio.get_running_loop().call_later(self.config.drain_timeout_s, self._kill, replica)

    def _kill(self, replica: Replica) -> None:
        if replica.process.returncode is None:
            log.warning("%s did not drain in %.0f s; killing it", replica.name, self.config.drain_timeout_s)
            replica.process.kill()

    async def _reap(self, replica: Replica) -> None:
        code = await replica.process.wait()
        if replica.state is not ReplicaState.STOPPING:
            log.error("%s exited unexpectedly with code %s", replica.name, code)
        replica.state, replica.exit_code = ReplicaState.EXITED, code
        replica.exited.set()
        self._publish()

    async def _watch_loop(self) -> None:
        while True:
            for replica in self.by_state(ReplicaState.STARTING):
                try:
                    async with self._session.get(f"http://{replica.address}/ready") as resp:
                        if resp.status == 200 and replica.state is ReplicaState.STARTING:
                            replica.state = ReplicaState.READY
                            log.info("%s is ready", replica.name)
                            self._publish()
                except (TimeoutError, aiohttp.ClientError):
                    pass  # still loading
            await asyncio.sleep(self.config.poll_interval_s)

    def _publish(self) -> None:
        self.on_change([r.address for r in self.by_state(ReplicaState.READY)])
        self._write_sd()
        self._changed.set()

    def _write_sd(self) -> None:
        if self.config.sd_dir:
            host = self.config.host
            write_atomically(
                self.config.sd_dir / "replicas.json", json.dumps(file_sd_groups(self.replicas, host, False), indent=1)
            )
            write_atomically(
                self.config.sd_dir / "gpus.json", json.dumps(file_sd_groups(self.replicas, host, True), indent=1)
            )

    async def wait_for(self, predicate: Callable[[LocalFleet], bool], timeout: float) -> None:
        """Wait until `predicate(fleet)` holds; TimeoutError names the fleet's state."""

        async def loop():
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise TimeoutError(f"fleet did not reach the expected state in {timeout:.0f} s: {self.status()}") from None

    async def close(self, timeout: float = 30.0) -> None:
        """Drain every replica and wait for all processes to exit (killing stragglers)."""
        for replica in self.replicas:
            if replica.state is not ReplicaState.EXITED and replica.state is not ReplicaState.STOPPING:
                self._retire(replica)
        self._publish()
        pending = [r for r in self.replicas if r.state is not ReplicaState.EXITED]
        if pending:
            _done, _not_done = await asyncio.wait(
                [asyncio.create_task(r.exited.wait()) for r in pending], timeout=timeout
            )
            for replica in pending:
                if replica.process.returncode is None:
                    replica.process.kill()
                    await replica.process.wait()
        if self._watch:
            self._watch.cancel()
        if self._session:
            await self._session.close()
