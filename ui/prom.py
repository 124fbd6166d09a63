"""Reading Prometheus and Alertmanager for the console: plain HTTP calls that raise one error type a page can show,
and pure conversions of their answers into DataFrames."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import requests

TIMEOUT_S = 10.0


class SourceUnavailable(RuntimeError):
    """Prometheus or Alertmanager did not answer, or refused the query; the message says which and why."""


@dataclass(frozen=True)
class Answer:
    """A query's result with where it came from, so a page can show the query and how fresh the figure is."""

    query: str
    frame: pd.DataFrame
    evaluated_at: float  # the evaluation time (instant queries) or the range's end


def get_json(url: str, path: str, params: dict, what: str) -> dict | list:
    try:
        resp = requests.get(f"{url.rstrip('/')}{path}", params=params, timeout=TIMEOUT_S)
    except requests.RequestException as err:
        raise SourceUnavailable(f"{what} at {url} did not answer ({type(err).__name__})") from None
    try:
        body = resp.json()
    except ValueError:
        raise SourceUnavailable(f"{what} at {url} answered {resp.status_code} without JSON") from None
    if resp.status_code != 200 or (isinstance(body, dict) and body.get("status") == "error"):
        detail = body.get("error", resp.reason) if isinstance(body, dict) else resp.reason
        raise SourceUnavailable(f"{what} at {url} refused {params.get('query', path)!r}: {detail}")
    return body


def instant(url: str, query: str, at_s: float) -> Answer:
    body = get_json(url, "/api/v1/query", {"query": query, "time": at_s}, "Prometheus")
    return Answer(query, vector_frame(body["data"]["result"]), at_s)


def range_query(url: str, query: str, start_s: float, end_s: float, step_s: float) -> Answer:
    body = get_json(
        url, "/api/v1/query_range", {"query": query, "start": start_s, "end": end_s, "step": step_s}, "Prometheus"
    )
    return Answer(query, matrix_frame(body["data"]["result"]), end_s)


def alerts(url: str) -> list[dict]:
    return get_json(url, "/api/v2/alerts", {}, "Alertmanager")


def vector_frame(result: list[dict]) -> pd.DataFrame:
    """One row per series: its labels as columns, `value` and the sample's `time`."""
    rows = [{**r["metric"], "value": float(r["value"][1]), "time": float(r["value"][0])} for r in result]
    return pd.DataFrame(rows, columns=sorted({k for r in rows for k in r}) or ["value", "time"])


def matrix_frame(result: list[dict]) -> pd.DataFrame:
    """Long form: one row per sample, the series' labels as columns, then `time` and `value`."""
    rows = [{**r["metric"], "time": float(t), "value": float(v)} for r in result for t, v in r["values"]]
    return pd.DataFrame(rows, columns=sorted({k for r in rows for k in r}) or ["time", "value"])


def by_label(frame: pd.DataFrame, label: str) -> dict[str, float]:
    """{label value: value} of an instant answer (the labelless series under '')."""
    if frame.empty:
        return {}
    keys = frame[label] if label in frame else pd.Series([""] * len(frame))
    return {str(k): float(v) for k, v in zip(keys.fillna(""), frame["value"]) if math.isfinite(float(v))}
