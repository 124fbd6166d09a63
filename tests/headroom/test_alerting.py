"""The local stack's alerting: a real Alertmanager routing to the webhook receiver, which writes each alert as a
JSON line with its runbook; bad notifications refused; the stack's rules compressed and linked to local runbooks."""

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import yaml

from headroom.alerting import AlertmanagerProcess, WebhookReceiver, alertmanager_config, stack_rules


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_stacks_rules_compress_the_slo_windows_and_link_local_runbooks(tmp_path):
    rule_file, inhibit = stack_rules(tmp_path, 5, {"ttftSeconds": 0.3})
    groups = yaml.safe_load(rule_file.read_text())["groups"]
    records = {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}
    assert "[2m]" in records["model_name:headroom_slo_ttft_errors:ratio_rate1h"]  # "1h" over 2 minutes
    assert next(g for g in groups if g["name"] == "headroom-cost.rules")["interval"] == "5s"
    runbooks = [r["annotations"]["runbook_url"] for g in groups for r in g["rules"] if "alert" in r]
    assert runbooks and all(u.startswith("file://") and u.endswith(".md") for u in runbooks)
    assert inhibit and all("source_matchers" in rule for rule in inhibit)


def test_alertmanager_notifies_the_receiver_firing_then_resolved(tmp_path):
    async def scenario():
        receiver = WebhookReceiver(tmp_path / "alerts.jsonl", "127.0.0.1", free_port())
        await receiver.start()
        manager = AlertmanagerProcess(alertmanager_config(receiver.url, []), tmp_path / "am", "127.0.0.1", free_port())
        try:
            await manager.start()
            now = datetime.now(UTC)
            alert = {
                "labels": {"alertname": "HeadroomTTFTBudgetBurn", "severity": "critical", "model_name": "m"},
                "annotations": {
                    "summary": "s",
                    "description": "d",
                    "runbook_url": "file:///r/HeadroomTTFTBudgetBurn.md",
                },
                "startsAt": now.isoformat(),
            }
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{manager.url}/api/v2/alerts", json=[alert]) as resp:
                    assert resp.status == 200
                await wait_for(lambda: len(receiver.received) >= 1)
                ended = {**alert, "endsAt": (now + timedelta(seconds=1)).isoformat()}
                async with session.post(f"{manager.url}/api/v2/alerts", json=[ended]) as resp:
                    assert resp.status == 200
                await wait_for(lambda: any(a["status"] == "resolved" for a in receiver.received))
                async with session.post(receiver.url, data=b"{not json") as resp:
                    assert resp.status == 400 and "alerts" in (await resp.json())["error"]
        finally:
            await manager.stop()
            await receiver.stop()

    asyncio.run(scenario())
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert next(a["status"] for a in lines) == "firing" and lines[-1]["status"] == "resolved"
    assert {a["alertname"] for a in lines} == {"HeadroomTTFTBudgetBurn"}
    assert lines[0]["runbook_url"] == "file:///r/HeadroomTTFTBudgetBurn.md" and lines[0]["labels"]["model_name"] == "m"


async def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("no notification within the timeout")
        await asyncio.sleep(0.2)
