"""A server binary the local stack runs (Prometheus, Alertmanager): its YAML config written to its own directory,
started on loopback with its output in a log, ready once its `/-/ready` answers, stopped by its process id."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import yaml

from serving.common.child_process import die_with_parent

log = logging.getLogger("headroom.daemon")


async def wait_ready(process, ready_url: str, log_path: Path, name: str, timeout: float) -> None:
    """Until `ready_url` answers 200; a process that exits first, or a timeout, raises with the log's tail."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while True:
            if process.returncode is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with code {process.returncode}:\n{tail}")
            try:
                async with session.get(ready_url) as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{name} did not become ready on {ready_url} within {timeout:.0f} s")
            await asyncio.sleep(0.2)


async def stop_process(process, timeout: float = 15.0) -> None:
    """SIGTERM to the child by its process id; SIGKILL if it has not exited within `timeout`."""
    if process is None or process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()


class Daemon:
    """Subclasses name themselves and give their command line for a written config file."""

    name = "daemon"  # its files' stem
    title = "Daemon"  # how logs name it

    def __init__(self, config: dict, run_dir: Path, host: str, port: int):
        self.config, self.run_dir, self.host, self.port = config, run_dir, host, port
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self, config_path: Path) -> list[str]:
        raise NotImplementedError

    async def start(self, timeout: float = 30.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.run_dir / f"{self.name}.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        log_path = self.run_dir / f"{self.name}.log"
        with open(log_path, "ab") as log_file:  # noqa: ASYNC230
            self.process = await asyncio.create_subprocess_exec(
                *self.command(config_path),
                stdout=log_file,
                stderr=log_file,
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        await wait_ready(self.process, f"{self.url}/-/ready", log_path, self.name, timeout)
        log.info("%s %s (pid %d) is ready", self.title, self.url, self.process.pid)

    async def stop(self, timeout: float = 15.0) -> None:
        await stop_process(self.process, timeout)
