"""`headroom loadtest run`: Locust headless, one process or a master with N workers on loopback, then the
results folder: requests.parquet, summary.json, Locust's CSV and HTML reports, and plots. A run that could
not finish keeps what it measured and is marked partial."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from loadgen.campaign import Campaign, campaign_workload, load_campaign
from loadgen.records import read_records
from loadgen.summary import summarize
from serving.common.child_process import die_with_parent

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def check_target(campaign: Campaign, timeout_s: float = 5.0) -> str | None:
    """None when the target answers HTTP at all; otherwise why not."""
    try:
        urllib.request.urlopen(f"{campaign.base_url}/v1/models", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return f"target {campaign.base_url} is unreachable: {reason}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + 15
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def _interrupt_on_sigterm():
    """A scheduler's SIGTERM stops a campaign as Ctrl-C does: Locust stopped, what was measured kept and marked
    partial. (Ctrl-C alone is not enough: a process started in the background may have SIGINT ignored.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, allow_nan=True) + "\n")
    os.replace(tmp, path)


def run_campaign(
    path: str, out: str | Path, workers: int = 0, quiet: bool = False, overrides: dict | None = None
) -> tuple[dict, int]:
    """Run a campaign file (with some keys overridden, e.g. the target of a stack started just now);
    (summary, exit code: 0 complete, 1 partial, 2 could not start)."""
    campaign = load_campaign(path, overrides)
    workload = campaign_workload(campaign)
    out = Path(out)
    (out / "records").mkdir(parents=True, exist_ok=True)
    for old in (out / "records").glob("*.jsonl"):
        old.unlink()
    effective = out / "campaign.yaml"  # what ran, overrides and resolved trace paths included
    effective.write_text(yaml.safe_dump(campaign.model_dump(mode="json", by_alias=True), sort_keys=False))
    path = str(effective)
    problem = check_target(campaign)
    if problem:
        summary = _finish(campaign, workload, out, workers, partial_reason=problem)
        return summary, 2
    env = {
        **os.environ,
        "HEADROOM_CAMPAIGN": str(Path(path).resolve()),
        "HEADROOM_RESULTS": str(out.resolve()),
        "HEADROOM_PROCESSES": str(max(1, workers)),
        "PYTHONPATH": _pythonpath(),
    }
    common = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
    report = [
        "--headless",
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust.html"),
        "--exit-code-on-error",
        "0",
        "--only-summary",
    ]
    output = subprocess.DEVNULL if quiet else None
    processes: list[subprocess.Popen] = []
    reason = None
    with _interrupt_on_sigterm():
        try:
            if workers > 0:
                port = _free_port()
                master = subprocess.Popen(
                    [
                        *common,
                        *report,
                        "--master",
                        "--master-bind-host",
                        "127.0.0.1",
                        "--master-bind-port",
                        str(port),
                        "--expect-workers",
                        str(workers),
                    ],
                    env=env,
                    stdout=output,
                    stderr=output,
                    preexec_fn=die_with_parent,
                )
                processes.append(master)
                for _ in range(workers):
                    processes.append(
                        subprocess.Popen(
                            [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                            env=env,
                            stdout=output,
                            stderr=output,
                            preexec_fn=die_with_parent,
                        )
                    )
            else:
                master = subprocess.Popen(
                    [*common, *report], env=env, stdout=output, stderr=output, preexec_fn=die_with_parent
                )
                processes.append(master)
            limit = (float(workload.arrival_s[-1]) if len(workload) else 0.0) + campaign.timeout_s + 120.0
            try:
                code = master.wait(limit)
                if code != 0:
                    reason = f"locust exited with status {code}"
            except subprocess.TimeoutExpired:
                reason = f"stopped after {limit:.0f} s without finishing"
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            _stop(processes)
    summary = _finish(campaign, workload, out, workers, partial_reason=reason)
    return summary, 1 if summary["partial"] else 0


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[1])
    existing = os.environ.get("PYTHONPATH")
    return root if not existing else f"{root}{os.pathsep}{existing}"


def _finish(campaign: Campaign, workload, out: Path, workers: int, partial_reason: str | None) -> dict:
    records = read_records(out / "records")
    duration = float(workload.arrival_s[-1]) if len(workload) else 0.0
    target_rate = len(workload) / duration if duration > 0 else math.nan
    summary = summarize(records, len(workload), campaign.slo.ttft_s, campaign.slo.tpot_s, target_rate)
    if partial_reason is None and len(records) < len(workload):
        partial_reason = f"{len(workload) - len(records)} of {len(workload)} requests have no result"
    summary.update(
        {
            "campaign": campaign.name,
            "target": campaign.base_url,
            "model": campaign.model,
            "api": campaign.api,
            "stream": campaign.stream,
            "tags": campaign.tags,
            "seed": campaign.seed,
            "workers": workers,
            "partial": partial_reason is not None,
            "partial_reason": partial_reason,
        }
    )
    if len(records):
        tmp = out / "requests.parquet.tmp"
        records.to_parquet(tmp, index=False)
        os.replace(tmp, out / "requests.parquet")
        from loadgen.plots import plot_campaign

        plot_campaign(records, out / "latency_throughput.png", f"{campaign.name}: {len(records)} requests")
    _write_json(out / "summary.json", summary)
    return summary
