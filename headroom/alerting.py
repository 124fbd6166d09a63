"""The local stack's alerting: the mixin's rules for its Prometheus, a real Alertmanager (Debian's
`prometheus-alertmanager`) and a webhook receiver that writes each notified alert as a JSON line.

Time is compressed for the local stack: each SLO window is recorded over about a thirtieth of its name
(`ratio_rate1h` over 2 minutes), so that a demo of minutes fires and resolves what production shows over hours.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from dashboards.build import INHIBIT_FILE, RULES_FILE, compile_mixin, render
from headroom.daemon import Daemon

log = logging.getLogger("headroom.alerting")
RUNBOOKS = Path(__file__).resolve().parents[1] / "docs" / "runbooks"
# about 30 times shorter; the shortest stays a few scrapes long
COMPRESSED_WINDOWS = {"5m": "25s", "30m": "1m", "1h": "2m", "2h": "4m", "6h": "12m", "1d": "48m", "3d": "144m"}


def stack_rules(out: Path, interval_s: int, slo: dict) -> tuple[Path, list[dict]]:
    """The mixin built for the local stack (its SLO, compressed windows, cost rules at the scrape interval, runbooks
    as local files): the rules file, and the Alertmanager inhibition rules."""
    compiled = compile_mixin(
        {
            "slo": slo,
            "sloWindowDurations": COMPRESSED_WINDOWS,
            "runbookUrlBase": RUNBOOKS.as_uri() + "/",
            "absentJobs": ["vllm", "dcgm", "gateway"],
            "costRuleIntervalSeconds": interval_s,
        }
    )
    files = render(compiled)
    out.mkdir(parents=True, exist_ok=True)
    (out / RULES_FILE).write_text(files[RULES_FILE])
    return out / RULES_FILE, yaml.safe_load(files[INHIBIT_FILE])["inhibit_rules"]


def find_alertmanager() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        "no Alertmanager binary on PATH; install Debian's package: apt-get install "
        "prometheus-alertmanager (make demo does)"
    )


def alertmanager_config(webhook_url: str, inhibit_rules: list[dict]) -> dict:
    """Every alert to the webhook, grouped by alert and model, sent at once and again when resolved."""
    return {
        "route": {
            "receiver": "headroom",
            "group_by": ["alertname", "model_name"],
            "group_wait": "1s",
            "group_interval": "5s",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "headroom", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
        "inhibit_rules": inhibit_rules,
    }


class AlertmanagerProcess(Daemon):
    """One Alertmanager, clustering off, with its own data directory."""

    name = "alertmanager"
    title = "Alertmanager"

    def command(self, config_path: Path) -> list[str]:
        return [
            find_alertmanager(),
            f"--config.file={config_path}",
            f"--storage.path={self.run_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
        ]


class WebhookReceiver:
    """Alertmanager's webhook: each alert of each notification appended to `path` as one JSON line (status, labels,
    annotations, runbook URL, times); `on_alert` sees each one too."""

    def __init__(self, path: Path, host: str, port: int, on_alert=None):
        self.path, self.host, self.port, self.on_alert = path, host, port, on_alert
        self.received: list[dict] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/alerts"

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")  # this run's alerts only
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/alerts", self._notification)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _notification(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            alerts = body["alerts"]
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"error": "expected Alertmanager's webhook JSON with an `alerts` list"}, status=400
            )
        lines = [alert_line(alert, time.time()) for alert in alerts]
        with open(self.path, "a") as f:  # noqa: ASYNC230
            f.writelines(json.dumps(line) + "\n" for line in lines)
        for line in lines:
            self.received.append(line)
            if self.on_alert is not None:
                self.on_alert(line)
        return web.Response(status=200)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def alert_line(alert: dict, received_s: float) -> dict:
    """One notified alert as the console and the demo read it."""
    labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
    return {
        "received_s": received_s,
        "status": alert.get("status"),
        "alertname": labels.get("alertname"),
        "severity": labels.get("severity"),
        "labels": labels,
        "summary": annotations.get("summary"),
        "description": annotations.get("description"),
        "runbook_url": annotations.get("runbook_url"),
        "starts_at": alert.get("startsAt"),
        "ends_at": alert.get("endsAt"),
    }


async def alertmanager_alerts(url: str) -> list[dict]:
    """The alerts Alertmanager holds now (its v2 API)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.get(f"{url}/api/v2/alerts") as resp:
            return await resp.json()
