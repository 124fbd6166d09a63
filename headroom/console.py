"""`headroom console`: the Streamlit console as a process on loopback, pointed at a Prometheus, an Alertmanager and
the autoscaler's decision log; `headroom up` runs one beside the stack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from headroom.daemon import stop_process, wait_ready
from serving.common.child_process import die_with_parent

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


def console_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
    ]


def console_env(prometheus: str, alertmanager: str | None, decision_log: Path | None) -> dict[str, str]:
    env = {**os.environ, "HEADROOM_PROMETHEUS_URL": prometheus}
    if alertmanager:
        env["HEADROOM_ALERTMANAGER_URL"] = alertmanager
    if decision_log:
        env["HEADROOM_DECISION_LOG"] = str(decision_log)
    return env


def run(args) -> int:
    """In the foreground until Ctrl-C."""
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    log = Path(args.decision_log) if args.decision_log else None
    if log is not None and not log.exists():
        raise ValueError(f"--decision-log {log} does not exist")
    print(f"console http://{args.host}:{args.port}  (Prometheus {args.prometheus}; Ctrl-C stops it)", file=sys.stderr)
    return subprocess.call(
        console_command(args.host, args.port), env=console_env(args.prometheus, args.alertmanager, log)
    )


class ConsoleProcess:
    """The console as a child of the local stack: started, ready once its health endpoint answers, stopped."""

    def __init__(self, host: str, port: int, env: dict[str, str], log_path: Path):
        self.host, self.port, self.env, self.log_path = host, port, env, log_path
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout_s: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230
            self.process = await asyncio.create_subprocess_exec(
                *console_command(self.host, self.port),
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        await wait_ready(self.process, f"{self.url}/_stcore/health", self.log_path, "console", timeout_s)

    async def stop(self) -> None:
        await stop_process(self.process)
