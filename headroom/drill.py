"""The demo's alert drill: engine errors injected on every replica under a light load fire the availability SLO's
fast-burn alert; the demo prints it with its runbook link as Alertmanager notifies it, then sees it resolve."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp

from headroom.demo import run_demo_load

DRILL_ALERT = "HeadroomAvailabilityBudgetBurn"
ERROR_RATE, DRILL_RATE = 0.5, 10.0  # half the requests fail, at 10 requests/s


async def set_faults(addresses: list[str], faults: dict) -> int:
    """Set `faults` on each replica; returns how many took them (one retired meanwhile is skipped)."""
    took = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for address in addresses:
            try:
                async with session.post(f"http://{address}/admin/faults", data=json.dumps(faults)) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"replica {address} refused the fault: {resp.status} {await resp.text()}")
                    took += 1
            except aiohttp.ClientConnectionError:
                continue
    return took


async def wait_for_alert(received: list[dict], status: str, after: int, timeout_s: float) -> dict | None:
    """The first notification of DRILL_ALERT with `status` among those received after index `after`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        for line in received[after:]:
            if line["alertname"] == DRILL_ALERT and line["status"] == status:
                return line
        await asyncio.sleep(0.5)
    return None


def describe(line: dict) -> str:
    return f"{line['status'].upper()} {line['alertname']} ({line['severity']}): {line['summary']}\n  runbook: {line['runbook_url']}"


async def alert_drill(
    stack, duration_s: float, say: Callable[[str], None], fire_timeout_s: float = 90.0, resolve_timeout_s: float = 150.0
) -> bool:
    """Inject, load, clear; True when the alert fired and then resolved, each notified through Alertmanager."""
    received = stack.receiver.received
    start_index = len(received)
    addresses = [r["address"] for r in stack.fleet.status()["replicas"] if r["state"] in ("ready", "starting")]
    say(
        f"alert drill: {ERROR_RATE:.0%} of requests fail on every replica for {duration_s:g} s "
        f"({DRILL_RATE:g} requests/s); expecting {DRILL_ALERT}"
    )
    try:
        await set_faults(addresses, {"error_rate": ERROR_RATE})
        load = await run_demo_load(stack.gateway_url, stack.profile.model.name, DRILL_RATE, duration_s, seed=7)
    finally:
        await set_faults(addresses, {})
    say(f"alert drill: {load.sent} requests sent, {load.failed} failed as injected; faults cleared")
    fired = await wait_for_alert(received, "firing", start_index, fire_timeout_s)
    if fired is None:
        say(f"alert drill: {DRILL_ALERT} did not fire within {fire_timeout_s:g} s")
        return False
    say(describe(fired))
    resolved = await wait_for_alert(received, "resolved", start_index, resolve_timeout_s)
    if resolved is None:
        say(f"alert drill: {DRILL_ALERT} did not resolve within {resolve_timeout_s:g} s")
        return False
    say(describe(resolved))
    return True
