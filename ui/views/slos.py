"""The SLOs and alerts page: attainment, error budget left and burn rates per model from the recorded error
ratios, and the alerts Alertmanager holds now with their runbooks."""

from __future__ import annotations

import math

import pandas as pd

from ui.prom import Answer, by_label

SLIS = ("ttft", "tpot", "availability")
WINDOWS = ("5m", "1h", "6h", "1d", "3d")
BUDGET_WINDOW = "3d"  # the longest recorded window: the error budget is read over it
OBJECTIVE = {
    "ttft": "model_name:headroom_slo_latency_objective:ratio",
    "tpot": "model_name:headroom_slo_latency_objective:ratio",
    "availability": "model_name:headroom_slo_availability_objective:ratio",
}


def error_series(sli: str, window: str) -> str:
    return f"model_name:headroom_slo_{sli}_errors:ratio_rate{window}"


def slo_queries() -> dict[tuple[str, str], str]:
    queries = {(sli, w): error_series(sli, w) for sli in SLIS for w in WINDOWS}
    queries.update({(sli, "objective"): OBJECTIVE[sli] for sli in SLIS})
    return queries


def slo_table(answers: dict[tuple[str, str], Answer]) -> pd.DataFrame:
    """Per model and SLI: the objective, attainment and burn rate per window, and the budget left over 3 days."""
    rows = []
    # the models vLLM serves (their objectives are recorded per served model): not names only the gateway has seen
    models = sorted({m for sli in SLIS for m in by_label(answers[(sli, "objective")].frame, "model_name")})
    for model in models:
        for sli in SLIS:
            objective = by_label(answers[(sli, "objective")].frame, "model_name").get(model, math.nan)
            allowed = 1.0 - objective
            row = {"model": model, "sli": sli, "objective": objective}
            for w in WINDOWS:
                errors = by_label(answers[(sli, w)].frame, "model_name").get(model, math.nan)
                row[f"attainment_{w}"] = 1.0 - errors
                row[f"burn_{w}"] = errors / allowed if allowed > 0 else math.nan
            row["budget_left"] = 1.0 - row[f"burn_{BUDGET_WINDOW}"]
            rows.append(row)
    return pd.DataFrame(rows)


def alert_rows(alerts: list[dict]) -> pd.DataFrame:
    """The firing alerts, most severe first, with their runbook links."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    rows = [
        {
            "alert": a["labels"].get("alertname", ""),
            "severity": a["labels"].get("severity", ""),
            "state": a.get("status", {}).get("state", ""),
            "since": a.get("startsAt", ""),
            "summary": a.get("annotations", {}).get("summary", ""),
            "runbook": a.get("annotations", {}).get("runbook_url", ""),
            "labels": ", ".join(
                f"{k}={v}" for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity")
            ),
        }
        for a in alerts
    ]
    rows.sort(key=lambda r: (rank.get(r["severity"], 9), r["alert"]))
    return pd.DataFrame(rows, columns=["alert", "severity", "state", "since", "summary", "runbook", "labels"])


def render() -> None:
    import streamlit as st

    from ui import fetch
    from ui.common import no_data, source_caption, unavailable_as_message
    from ui.settings import settings

    config, now = settings(), fetch.now_s()
    st.title("SLOs and alerts")
    with unavailable_as_message():
        answers = {key: fetch.instant(config.prometheus_url, q, now) for key, q in slo_queries().items()}
        newest = fetch.instant(config.prometheus_url, f"max(timestamp({error_series('ttft', '5m')}))", now).frame
    table = slo_table(answers)
    if table.empty:
        no_data("SLO series")
    else:
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                c: st.column_config.NumberColumn(format="%.4f")
                for c in table.columns
                if c.startswith(("attainment", "objective"))
            },
        )
        source_caption(
            error_series("ttft", "5m") + " (and the tpot and availability ones)",
            ", ".join(WINDOWS),
            "attainment = 1 - error ratio; burn rate = error ratio / (1 - objective); "
            f"budget left over {BUDGET_WINDOW} = 1 - burn rate there",
            float(newest["value"].max()) if not newest.empty else None,
        )
        burns = table.melt(
            id_vars=["model", "sli"],
            value_vars=[f"burn_{w}" for w in WINDOWS],
            var_name="window",
            value_name="burn rate",
        )
        st.bar_chart(burns, x="window", y="burn rate", color="sli")
    st.subheader("Alerts firing now")
    if not config.alertmanager_url:
        st.info("No Alertmanager given: `headroom console --alertmanager URL` (the local stack starts one).")
        return
    with unavailable_as_message():
        firing = alert_rows(fetch.alerts(config.alertmanager_url))
    if firing.empty:
        st.success("No alert is firing.")
    else:
        st.dataframe(firing, hide_index=True, column_config={"runbook": st.column_config.LinkColumn("runbook")})
