"""The console's cached reads: each Prometheus or Alertmanager answer kept for a short TTL, so that a page rerun on
every widget change does not query again."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import prom

TTL_S = 15


@st.cache_data(ttl=TTL_S, show_spinner=False)
def instant(url: str, query: str, at_s: float) -> prom.Answer:
    return prom.instant(url, query, at_s)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def range_query(url: str, query: str, start_s: float, end_s: float, step_s: float) -> prom.Answer:
    return prom.range_query(url, query, start_s, end_s, step_s)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def alerts(url: str) -> list[dict]:
    return prom.alerts(url)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def rule_intervals(url: str) -> dict[str, float]:
    """{recorded series: its group's evaluation interval in seconds}, from Prometheus's rules API."""
    body = prom.get_json(url, "/api/v1/rules", {"type": "record"}, "Prometheus")
    return {rule["name"]: float(group["interval"]) for group in body["data"]["groups"] for rule in group["rules"]}


@st.cache_resource(
    show_spinner="Loading the capacity atlases (a profile without one is measured on the engine once: minutes)"
)
def candidates(cache_dir: Path) -> list:
    """Every shipped profile with its atlas and price, loaded once per console process."""
    from autoscaler.planner.inputs import candidates as load

    return load(None, cache_dir)


def now_s() -> float:
    """The evaluation time of a page run, rounded to the TTL so that cached answers line up."""
    import time

    return float(int(time.time() // TTL_S) * TTL_S)
