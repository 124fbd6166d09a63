"""`headroom autoscale` as a process: a real Prometheus scraping an emulator, the autoscaler deciding for it (dry-run),
its own /metrics, JSON-line logs, a clear exit on a bad config, and a clean stop on SIGTERM."""

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from headroom.prometheus import PrometheusProcess
from serving.fleet.fleet import free_port
from tests.autoscaler.sources.test_prometheus import load, wait_for_targets
from tests.helpers import EmulatorServer, LoopThread, metric_value

pytestmark = pytest.mark.integration


def test_process_decides_exports_and_stops_cleanly(tmp_path):
    loop = LoopThread()
    with EmulatorServer(served_model_name="chat") as chat:
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "vllm", "static_configs": [{"targets": [f"127.0.0.1:{chat.port}"]}]}],
        }
        prometheus = PrometheusProcess(prom_config, tmp_path / "prom", port=free_port())
        loop.call(prometheus.start())
        process = None
        try:
            wait_for_targets(prometheus.url, 1)
            load(chat.url, "chat", 20)
            time.sleep(3)
            port = free_port()
            config = {
                "prometheus": {"url": prometheus.url, "rate_window": "30s"},
                "interval_s": 1,
                "metrics": {"port": port},
                "targets": [
                    {"name": "chat", "capacity": {"rps": 2.0}, "max_replicas": 8, "actuator": {"kind": "dry-run"}}
                ],
            }
            path = tmp_path / "autoscaler.yaml"
            path.write_text(yaml.safe_dump(config))
            process = subprocess.Popen(
                [sys.executable, "-m", "headroom", "autoscale", "--config", str(path)],
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline, text = time.time() + 30, ""
            while time.time() < deadline:
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                    if metric_value(text, "headroom_autoscaler_loop_duration_seconds_count") >= 2:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            code = process.wait(20)
            logs = [json.loads(line) for line in process.stderr.read().splitlines() if line.startswith("{")]
        finally:
            if process is not None and process.poll() is None:
                process.kill()
            loop.call(prometheus.stop())
            loop.close()
    assert code == 0
    assert metric_value(text, "headroom_autoscaler_desired_replicas", target="chat") >= 1
    assert metric_value(text, "headroom_autoscaler_stale", target="chat") == 0
    assert metric_value(text, "headroom_autoscaler_forecast_requests_per_second", target="chat", quantile="point") > 0
    decisions = [entry for entry in logs if entry.get("event") == "decision"]
    assert decisions and decisions[0]["target"] == "chat" and decisions[0]["reasons"]
    assert logs[-1]["event"] == "stopped"
    warm = next(entry for entry in logs if entry.get("event") == "warm_start")
    assert warm["samples"]["chat"] > 0  # the forecaster learned from Prometheus' range of the seconds before


def test_bad_config_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "autoscaler.yaml"
    path.write_text(yaml.safe_dump({"targets": [{"name": "chat", "capacity": {"rps": 0}}]}))
    done = subprocess.run(
        [sys.executable, "-m", "headroom", "autoscale", "--config", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "targets.0.capacity.rps" in done.stderr


def test_once_exits_1_when_prometheus_cannot_be_read(tmp_path):
    path = tmp_path / "autoscaler.yaml"
    config = {
        "prometheus": {"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 1},
        "metrics": {"port": free_port()},
        "targets": [{"name": "chat", "capacity": {"rps": 2.0}, "actuator": {"kind": "dry-run"}}],
    }
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "headroom", "autoscale", "--config", str(path), "--once"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "metrics could not be read" in done.stderr
