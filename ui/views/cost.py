"""The Cost page's arithmetic, pure: PromQL over the recorded cost and token series for a time range, and the
per-model and per-tenant tables on the allocation basis (every GPU-hour paid) and the usage basis (busy GPUs only)."""

from __future__ import annotations

import math

import pandas as pd

from ui.prom import Answer, by_label

COST = "model_name:headroom_cost_dollars_per_hour:sum"
IDLE_COST = "model_name:headroom_idle_cost_dollars_per_hour:sum"
GPUS = "model_name:headroom_gpus:sum"
TENANT_COST = "model_name_tenant:headroom_cost_dollars_per_hour:share"
RECORDED_1H = "model_name:headroom_cost_per_million_output_tokens:ratio_rate1h"
# tokens over a range: counted by the counters themselves, as the recorded 1h ratio counts them (a 5m rate summed over
# the range would miss the last minutes' tokens and count some from before it)
OUTPUT_TOKENS, PROMPT_TOKENS = "output_tokens", "prompt_tokens"
MODEL_COUNTERS = {OUTPUT_TOKENS: "vllm:generation_tokens_total", PROMPT_TOKENS: "vllm:prompt_tokens_total"}
TENANT_COUNTERS = {
    OUTPUT_TOKENS: "headroom_gateway_output_tokens_total",
    PROMPT_TOKENS: "headroom_gateway_prompt_tokens_total",
}
GPU_UTIL = 'avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL{{job="dcgm"}}[{range_s}s]))'  # percent, every GPU reporting
RANGES_S = {"1 hour": 3600, "6 hours": 6 * 3600, "1 day": 86400, "7 days": 7 * 86400}


def integral_query(series: str, range_s: int, interval_s: float) -> str:
    """A recorded per-hour series (dollars or GPUs) summed over the range sample by sample, in hours: a recording
    rule writes one sample per evaluation interval, so each sample stands for that long."""
    return f"sum_over_time({series}[{range_s}s]) * {interval_s / 3600.0:g}"


def model_queries(range_s: int, intervals: dict[str, float]) -> dict[str, str]:
    queries = {s: integral_query(s, range_s, intervals.get(s, 60.0)) for s in (COST, IDLE_COST, GPUS)}
    queries.update(
        {k: f'sum by (model_name) (increase({c}{{job="vllm"}}[{range_s}s]))' for k, c in MODEL_COUNTERS.items()}
    )
    return queries


def tenant_queries(range_s: int, intervals: dict[str, float]) -> dict[str, str]:
    relabel = lambda c: (
        f'label_replace(increase({c}{{job="gateway"}}[{range_s}s]), "model_name", "$1", "model", "(.+)")'
    )
    queries = {TENANT_COST: integral_query(TENANT_COST, range_s, intervals.get(TENANT_COST, 60.0))}
    queries.update({k: f"sum by (model_name, tenant) ({relabel(c)})" for k, c in TENANT_COUNTERS.items()})
    return queries


def per_million(dollars: float, tokens: float) -> float:
    return dollars / (tokens / 1e6) if tokens > 0 else math.nan


def model_table(answers: dict[str, Answer]) -> pd.DataFrame:
    """Per model over the range: GPU-hours, dollars on both bases, tokens, and dollars per 1M tokens."""
    values = {s: by_label(a.frame, "model_name") for s, a in answers.items()}
    rows = []
    for model in sorted(values[COST]):
        paid, idle = values[COST][model], values[IDLE_COST].get(model, 0.0)
        out, prompt = values[OUTPUT_TOKENS].get(model, 0.0), values[PROMPT_TOKENS].get(model, 0.0)
        used = max(paid - idle, 0.0)
        rows.append(
            {
                "model": model,
                "gpu_hours": values[GPUS].get(model, math.nan),
                "cost_allocation": paid,
                "cost_idle": idle,
                "cost_usage": used,
                "busy_share": used / paid if paid > 0 else math.nan,
                "output_tokens": out,
                "prompt_tokens": prompt,
                "per_m_output_allocation": per_million(paid, out),
                "per_m_output_usage": per_million(used, out),
                "per_m_prompt_allocation": per_million(paid, prompt),
                "per_m_prompt_usage": per_million(used, prompt),
            }
        )
    return pd.DataFrame(rows)


def tenant_table(answers: dict[str, Answer]) -> pd.DataFrame:
    """Per model and tenant: dollars (its share of the allocation cost by the GPU work of its tokens) and per 1M."""
    frames = {s: a.frame for s, a in answers.items()}
    cost = frames[TENANT_COST]
    if cost.empty:
        return pd.DataFrame(columns=["model", "tenant", "cost", "output_tokens", "prompt_tokens", "per_m_output"])
    key = lambda f: {(r.get("model_name", ""), r.get("tenant", "")): r["value"] for r in f.to_dict("records")}
    dollars, out, prompt = key(cost), key(frames[OUTPUT_TOKENS]), key(frames[PROMPT_TOKENS])
    rows = [
        {
            "model": m,
            "tenant": t,
            "cost": d,
            "output_tokens": out.get((m, t), 0.0),
            "prompt_tokens": prompt.get((m, t), 0.0),
            "per_m_output": per_million(d, out.get((m, t), 0.0)),
        }
        for (m, t), d in sorted(dollars.items())
    ]
    return pd.DataFrame(rows)


DEFAULT_API_PRICES = pd.DataFrame(
    [  # examples to edit: what a hosted API would charge for the same tokens
        {"offer": "hosted 8B-class model (example)", "usd_per_m_prompt": 0.10, "usd_per_m_output": 0.20},
        {"offer": "hosted 70B-class model (example)", "usd_per_m_prompt": 0.60, "usd_per_m_output": 0.80},
    ]
)


def api_comparison(models: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """What each model's tokens over the range would cost at each API offer, beside what the GPUs cost."""
    rows = []
    for m in models.to_dict("records"):
        for p in prices.dropna().to_dict("records"):
            api = m["prompt_tokens"] / 1e6 * p["usd_per_m_prompt"] + m["output_tokens"] / 1e6 * p["usd_per_m_output"]
            rows.append(
                {
                    "model": m["model"],
                    "offer": p["offer"],
                    "api_cost": api,
                    "gpu_cost": m["cost_allocation"],
                    "gpu_over_api": m["cost_allocation"] / api if api > 0 else math.nan,
                }
            )
    return pd.DataFrame(rows)


def freshness_s(answers: dict[str, Answer], newest_sample_s: float) -> float:
    """How old the newest recorded cost sample is at the page's evaluation time."""
    return max(0.0, max(a.evaluated_at for a in answers.values()) - newest_sample_s)


def render() -> None:
    import streamlit as st

    from ui import fetch
    from ui.common import no_data, source_caption, unavailable_as_message
    from ui.settings import settings

    url = settings().prometheus_url
    st.title("Cost per token")
    label = st.selectbox("Time range", list(RANGES_S), index=0)
    range_s, now = RANGES_S[label], fetch.now_s()
    with unavailable_as_message():
        intervals = fetch.rule_intervals(url)
        models = {s: fetch.instant(url, q, now) for s, q in model_queries(range_s, intervals).items()}
        tenants = {s: fetch.instant(url, q, now) for s, q in tenant_queries(range_s, intervals).items()}
        newest = fetch.instant(url, f"max(timestamp({COST}))", now).frame
        recorded = fetch.instant(url, RECORDED_1H, now)
        util = fetch.instant(url, GPU_UTIL.format(range_s=range_s), now)
    table = model_table(models)
    if table.empty:
        no_data("cost series (`" + COST + "`)")
        return
    st.subheader("Per model")
    st.dataframe(table, hide_index=True)
    st.download_button("Download per-model CSV", table.to_csv(index=False), "cost-per-model.csv", "text/csv")
    method = (
        f"allocation: every paid GPU-hour (reconciles with the bill); usage: paid minus idle GPU-hours; "
        f"each recorded sample stands for its rule group's interval ({intervals.get(COST, 60):g} s)"
    )
    source_caption(models[COST].query, label, method, float(newest["value"].max()) if not newest.empty else None)
    cols = st.columns(len(table))
    for col, row in zip(cols, table.to_dict("records")):
        col.metric(
            f"{row['model']}: $ per 1M output tokens",
            f"{row['per_m_output_allocation']:.3f}",
            help=f"usage basis {row['per_m_output_usage']:.3f}; busy share of paid GPU-hours {row['busy_share']:.0%}",
        )
    if not util.frame.empty:
        st.metric(
            "GPU utilization (DCGM, every GPU reporting)",
            f"{util.frame['value'].iloc[0]:.0f}%",
            help=f"`{util.query}`: the share of time a kernel ran, averaged over the range",
        )
    if not recorded.frame.empty:
        st.caption(
            f"Recorded over the last hour (`{RECORDED_1H}`): "
            + ", ".join(f"{m}: {v:.3f}" for m, v in by_label(recorded.frame, "model_name").items())
        )
    st.bar_chart(table.set_index("model")[["cost_usage", "cost_idle"]], y_label="dollars over the range")
    st.subheader("Per tenant")
    per_tenant = tenant_table(tenants)
    if per_tenant.empty:
        st.info("No per-tenant series: tenants come from the gateway (its `tenant` label).")
    else:
        st.dataframe(per_tenant, hide_index=True)
        st.download_button("Download per-tenant CSV", per_tenant.to_csv(index=False), "cost-per-tenant.csv", "text/csv")
        source_caption(tenants[TENANT_COST].query, label, "each tenant's tokens weighted by the GPU work they cost")
    st.subheader("Against an API provider's list price")
    prices = st.data_editor(DEFAULT_API_PRICES, num_rows="dynamic", hide_index=True, key="api_prices")
    st.dataframe(api_comparison(table, prices), hide_index=True)
