"""Headroom's image built and tried: the Containerfile built with buildah (chroot isolation: no container runtime
needed), then the entry points run in it as its non-root user, and its gateway serving an emulator on loopback."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.__main__ import _table

ROOT = Path(__file__).resolve().parents[1]
TAG = "localhost/headroom:bench"
USER = "10001:10001"
EMULATOR_PORT, GATEWAY_PORT, METRICS_PORT = 18431, 18432, 18433


def build() -> dict:
    """`buildah bud`; HEADROOM_IMAGE_BASE names a local mirror of the base where its registry is out of reach, and
    HEADROOM_IMAGE_BUILD_ARGS adds builder flags (e.g. the machine's CA bundle for pip behind a proxy)."""
    base = os.environ.get("HEADROOM_IMAGE_BASE")
    extra = shlex.split(os.environ.get("HEADROOM_IMAGE_BUILD_ARGS", ""))
    command = [
        "buildah",
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        *extra,
        *(["--build-arg", f"BASE={base}"] if base else []),
        "-f",
        "Containerfile",
        "-t",
        TAG,
        ".",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    inspect = json.loads(subprocess.run(["buildah", "inspect", TAG], check=True, capture_output=True, text=True).stdout)
    size = int(
        subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Size}}", TAG], check=True, capture_output=True, text=True
        ).stdout
    )
    return {
        "seconds": seconds,
        "bytes": size,
        "user": inspect["OCIv1"]["config"].get("User"),
        "base": base or "the Containerfile's",
    }


def checks(container: str) -> list[dict]:
    run = lambda *argv, **kw: subprocess.run(
        ["buildah", "run", "--isolation", "chroot", "--user", USER, container, "--", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )
    rows = []
    record = lambda what, ok, detail="": rows.append(
        {"check": what, "result": "ok" if ok else "FAILED", "detail": detail}
    )
    ident = run("id", "-u").stdout.strip()
    record("runs as a non-root user", ident == USER.split(":")[0], f"uid {ident}")
    record("headroom --help", run("headroom", "--help").returncode == 0)
    planned = run("headroom", "plan", "--rate", "20", "--prompt-tokens", "512", "--output-tokens", "128", "--json")
    rows_planned = json.loads(planned.stdout) if planned.returncode == 0 else []
    record("headroom plan --json (the shipped atlases)", len(rows_planned) == 9, f"{len(rows_planned)} profiles")
    rendered = run("headroom", "k8s", "render", "--profile", "llama-3.1-8b-h100", "--scaler", "keda", "--out", "/tmp/o")
    record(
        "headroom k8s render (bases, dcgm-exporter, mixin)",
        rendered.returncode == 0,
        f"{len(rendered.stdout.splitlines())} files",
    )
    record(
        "the console's, exporter's and autoscaler's imports",
        run("python3", "-c", "import ui.app, exporters.gpu, autoscaler.loop").returncode == 0,
    )
    rows.append(gateway_check(container))
    return rows


def gateway_check(container: str) -> dict:
    """The image's gateway in front of an emulated replica on the host's loopback: one completion through it."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "headroom", "emulate", "--port", str(EMULATOR_PORT), "--cold-start", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway = subprocess.Popen(
        [
            "buildah",
            "run",
            "--isolation",
            "chroot",
            "--user",
            USER,
            container,
            "--",
            "headroom",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(GATEWAY_PORT),
            "--metrics-port",
            str(METRICS_PORT),
            "--backend",
            f"127.0.0.1:{EMULATOR_PORT}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = json.dumps({"model": "meta-llama/Llama-3.1-8B-Instruct", "prompt": "a b c d", "max_tokens": 5}).encode()
        deadline, answer = time.monotonic() + 60, None
        while answer is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{GATEWAY_PORT}/v1/completions", body, {"content-type": "application/json"}
                )
                answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
            except OSError:
                time.sleep(1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read().decode()
        ok = bool(answer) and answer["usage"]["completion_tokens"] == 5 and "headroom_gateway_requests" in metrics
        return {
            "check": "its gateway serves an emulated replica",
            "result": "ok" if ok else "FAILED",
            "detail": "a completion of 5 tokens; /metrics on its own port",
        }
    finally:
        for process in (gateway, emulator):
            process.terminate()
            process.wait(30)


def image_section() -> str:
    built = build()
    container = subprocess.run(["buildah", "from", TAG], check=True, capture_output=True, text=True).stdout.strip()
    try:
        rows = checks(container)
    finally:
        subprocess.run(["buildah", "rm", container], check=False, capture_output=True)
    return "\n".join(
        [
            "## Headroom's image (`Containerfile`)",
            "",
            (
                f"Built with `buildah bud --isolation chroot` (no container runtime on this machine) on base "
                f"{built['base']}: {built['seconds']:.0f} s, {built['bytes'] / 1e9:.2f} GB, user {built['user']}. "
                "Then each entry point run in it as that user:"
            ),
            "",
            _table(rows, [("check", "check", ""), ("result", "result", ""), ("detail", "detail", "")]),
        ]
    )
