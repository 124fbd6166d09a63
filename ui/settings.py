"""Where the console reads from: set by `headroom console` in its environment (the UI process's edge)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serving.common.disk_cache import cache_folder


@dataclass(frozen=True)
class Settings:
    prometheus_url: str
    alertmanager_url: str | None
    decision_log: Path | None  # the autoscaler's JSON-lines decision log
    cache_dir: Path  # capacity atlases measured for profiles that ship none (atlas/), load tables


def settings() -> Settings:
    env = os.environ
    log = env.get("HEADROOM_DECISION_LOG")
    return Settings(
        env.get("HEADROOM_PROMETHEUS_URL", "http://127.0.0.1:9090"),
        env.get("HEADROOM_ALERTMANAGER_URL") or None,
        Path(log) if log else None,
        cache_folder(env),
    )
