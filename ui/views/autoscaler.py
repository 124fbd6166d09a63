"""The Autoscaler page: desired, ready and starting replicas over time, the forecast and its upper bound against the
load that came, every decision with its reasons from the decision log, and why the fleet holds what it holds now."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ui.prom import Answer

REPLICAS = {
    "desired": "headroom_autoscaler_desired_replicas",
    "current": "headroom_autoscaler_current_replicas",
    "ready": "headroom_autoscaler_ready_replicas",
    "starting": "headroom_autoscaler_starting_replicas",
}
FORECAST = "headroom_autoscaler_forecast_requests_per_second"
CAPACITY = "headroom_autoscaler_capacity_requests_per_second"
LOAD = 'sum by (model_name) (rate(vllm:request_success_total{job="vllm"}[1m]))'  # raw: a 5m rate would flatten the bursts the forecast is for
RANGES_S = {"15 minutes": 900, "1 hour": 3600, "6 hours": 6 * 3600, "1 day": 86400}


def step_for(range_s: int) -> float:
    return max(5.0, range_s / 300)  # about 300 points a chart


def replica_frame(answers: dict[str, Answer]) -> pd.DataFrame:
    """Long form: time, target, which (desired, current, ready, starting), replicas."""
    parts = [a.frame.assign(which=name) for name, a in answers.items() if not a.frame.empty]
    if not parts:
        return pd.DataFrame(columns=["time", "target", "which", "replicas"])
    frame = pd.concat(parts, ignore_index=True).rename(columns={"value": "replicas"})
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame[["time", "target", "which", "replicas"]]


def forecast_frame(forecast: Answer, load: Answer) -> pd.DataFrame:
    """Long form: time, series (forecast point, forecast upper, load that came), req/s."""
    parts = []
    if not forecast.frame.empty:
        parts.append(forecast.frame.assign(series="forecast " + forecast.frame["quantile"].astype(str)))
    if not load.frame.empty:
        parts.append(load.frame.assign(series="load that came"))
    if not parts:
        return pd.DataFrame(columns=["time", "series", "req/s"])
    frame = pd.concat(parts, ignore_index=True).rename(columns={"value": "req/s"})
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame[["time", "series", "req/s"]]


def read_decisions(path: Path, last: int = 500) -> pd.DataFrame:
    """The last decisions of the JSON-lines log (other events and lines that are not JSON are skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "decision":
                rows.append(event)
    frame = pd.DataFrame(
        rows[-last:],
        columns=["time", "target", "current", "ready", "desired", "changed", "stale", "leading", "reasons"],
    )
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    frame["reasons"] = frame["reasons"].map(lambda r: "; ".join(r) if isinstance(r, list) else str(r))
    return frame.iloc[::-1].reset_index(drop=True)


def why_now(decisions: pd.DataFrame, target: str) -> str:
    """A plain-words answer from the target's latest decision."""
    mine = decisions[decisions["target"] == target]
    if mine.empty:
        return f"No decision for {target} in the log yet."
    d = mine.iloc[0]
    verb = (
        "holds"
        if d["desired"] == d["current"]
        else ("scales up to" if d["desired"] > d["current"] else "scales down to")
    )
    ready = f", {d['ready']} of them ready" if d["ready"] != d["desired"] else ""
    stale = " Its metrics are stale, so it holds what it has." if d["stale"] else ""
    follower = " This instance does not hold the lease: another one writes the count." if not d["leading"] else ""
    return (
        f"{target} {verb} {d['desired']} replica(s){ready} (decided {d['time']:%H:%M:%S} UTC). "
        f"Because: {d['reasons'] or 'no reason recorded'}.{stale}{follower}"
    )


def render() -> None:
    import streamlit as st

    from ui import fetch
    from ui.common import no_data, source_caption, unavailable_as_message
    from ui.settings import settings

    config = settings()
    st.title("Autoscaler")
    label = st.selectbox("Time range", list(RANGES_S), index=0)
    range_s, now = RANGES_S[label], fetch.now_s()
    step = step_for(range_s)
    query = lambda q: fetch.range_query(config.prometheus_url, q, now - range_s, now, step)
    with unavailable_as_message():
        replicas = replica_frame({name: query(q) for name, q in REPLICAS.items()})
        forecast = forecast_frame(query(FORECAST), query(LOAD))
    if replicas.empty:
        no_data("autoscaler series (`headroom up --autoscale` runs one; `headroom autoscale` in a cluster)")
        return
    decisions = read_decisions(config.decision_log) if config.decision_log and config.decision_log.exists() else None
    for target in sorted(replicas["target"].unique()):
        st.subheader(target)
        if decisions is not None:
            st.markdown(f"**Why this many replicas now:** {why_now(decisions, target)}")
        st.line_chart(replicas[replicas["target"] == target], x="time", y="replicas", color="which")
    with unavailable_as_message():
        stamp = fetch.instant(config.prometheus_url, f"max(timestamp({REPLICAS['desired']}))", now).frame
    newest = float(stamp["value"].max()) if not stamp.empty else None
    source_caption(", ".join(REPLICAS.values()), label, f"range query, one point every {step:g} s", newest)
    st.subheader("Forecast against the load that came")
    st.line_chart(forecast, x="time", y="req/s", color="series")
    source_caption(f"{FORECAST}; {LOAD}", label, "the forecast is for the peak one cold start ahead")
    st.subheader("Decisions")
    if decisions is None:
        st.info(
            "No decision log given: `headroom console --decision-log FILE` (the JSON lines `headroom autoscale` "
            "logs; the local stack writes them to .run/autoscaler-decisions.jsonl)."
        )
    else:
        st.dataframe(decisions, hide_index=True)
