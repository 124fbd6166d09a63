"""The `headroom` command as users run it: emulate with a crash fault, `up` stopped by SIGTERM, clear CLI errors."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration
HEADROOM = [sys.executable, "-m", "headroom"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of an already-exited child counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_crash_fault_exits_abruptly():
    t0 = time.time()
    proc = subprocess.run(
        [*HEADROOM, "emulate", "--port", "0", "--crash-after", "0.5"], check=False, capture_output=True, timeout=30
    )
    assert proc.returncode == 3 and time.time() - t0 < 20
    assert b"crashing" in proc.stderr


def started_up(run_dir) -> tuple[subprocess.Popen, str]:
    """`headroom up` on free ports, and what it printed until it said it was up."""
    proc = subprocess.Popen(
        [
            *HEADROOM,
            "up",
            "--port",
            "0",
            "--prometheus-port",
            "0",
            "--console-port",
            "0",
            "--cold-start",
            "0.5",
            "--run-dir",
            str(run_dir),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    return proc, "".join(lines)


def test_up_killed_with_sigkill_leaves_no_child_behind(tmp_path):
    proc, text = started_up(tmp_path)
    children = [int(p) for p in re.findall(r"pid (\d+)", text)]
    assert len(children) >= 2 and all(alive(p) for p in children), text
    proc.kill()  # no chance to stop anything itself
    proc.wait(10)
    deadline = time.time() + 15
    while any(alive(p) for p in children) and time.time() < deadline:
        time.sleep(0.1)
    left = [p for p in children if alive(p)]
    for pid in left:  # the test cleans up what the product did not
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after headroom up was killed: {left}"


def test_up_stops_everything_on_sigterm(tmp_path):
    proc, text = started_up(tmp_path)
    assert "gateway" in text and "prometheus" in text and "console" in text, text
    pids = [int(p) for p in re.findall(r"pid (\d+)", text)]
    prometheus_pid = int(re.search(r"Prometheus .* \(pid (\d+)\)", text).group(1))
    assert len(pids) >= 3 and all(alive(p) for p in pids)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    time.sleep(0.5)
    assert not [p for p in pids + [prometheus_pid] if alive(p)], "a process was left behind"


@pytest.mark.parametrize(
    "args, words",
    [
        (["emulate", "--profile", "nope"], ["unknown profile 'nope'"]),
        (["up", "--profile", "nope", "--port", "0", "--prometheus-port", "0"], ["unknown profile 'nope'"]),
        (["emulate", "--cold-start", "-1", "--port", "0"], ["cold_start_s"]),
    ],
)
def test_cli_errors_name_what_is_wrong(args, words, tmp_path):
    proc = subprocess.run(
        [*HEADROOM, *args, *(["--run-dir", str(tmp_path)] if args[0] == "up" else [])],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    for word in words:
        assert word in proc.stderr
