"""The Capacity planner page: traffic (a rate and a mix, a trace, or a model's recent traffic in Prometheus), the SLO
and candidate profiles in; replicas, GPUs and cost per profile out, the cheapest highlighted, cost against latency
for every profile; for a trace, the predictive policy and the best tuned HPA simulated over it."""

from __future__ import annotations

import math

import pandas as pd

from autoscaler.planner.core import (
    Candidate,
    PlanRow,
    Slo,
    Traffic,
    cost_latency_curve,
    plan,
)

PEAK_RATE = "max_over_time(model_name:vllm_request_success:rate5m[{days}d])"
PROMPT_MIX = "sum_over_time(model_name:vllm_prompt_tokens:rate5m[{days}d]) / sum_over_time(model_name:vllm_request_success:rate5m[{days}d])"
OUTPUT_MIX = "sum_over_time(model_name:vllm_generation_tokens:rate5m[{days}d]) / sum_over_time(model_name:vllm_request_success:rate5m[{days}d])"
TRACE_POLICIES = ["predictive", "hpa:gpu_util=70"]  # the HPA's target is tuned by the sweep


def plan_frame(rows: list[PlanRow]) -> pd.DataFrame:
    return pd.DataFrame([r.as_dict() for r in rows])


def cheapest(rows: list[PlanRow]) -> PlanRow | None:
    return next((r for r in rows if r.meets_slo), None)


def with_prices(candidates: list[Candidate], prices: dict[str, float]) -> list[Candidate]:
    """The candidates with the GPU prices the user edited."""
    return [
        Candidate(c.profile, c.gpu, c.gpus_per_replica, prices.get(c.gpu, c.price_per_gpu_hour), c.atlas)
        for c in candidates
    ]


def tradeoff_frame(traffic: Traffic, slo: Slo, candidates: list[Candidate], rows: list[PlanRow]) -> pd.DataFrame:
    """Cost per hour against p95 TTFT for each profile that meets the SLO, from its planned count to 4 more."""
    planned = {r.profile: r.replicas for r in rows if r.meets_slo}
    points = [
        p for c in candidates if c.profile in planned for p in cost_latency_curve(traffic, slo, c, planned[c.profile])
    ]
    frame = pd.DataFrame(points, columns=["profile", "replicas", "cost_per_hour", "ttft_p95_s", "itl_p50_s"])
    return frame[frame["ttft_p95_s"].map(math.isfinite)]


def pareto_front(tradeoff: pd.DataFrame) -> pd.DataFrame:
    """The configurations no other one beats on both cost and p95 TTFT, cheapest first: the curve to choose on."""
    ordered = tradeoff.sort_values(["cost_per_hour", "ttft_p95_s"])
    best_ttft, keep = math.inf, []
    for index, row in ordered.iterrows():
        if row["ttft_p95_s"] < best_ttft:
            best_ttft = row["ttft_p95_s"]
            keep.append(index)
    return ordered.loc[keep]


def tradeoff_chart(tradeoff: pd.DataFrame):
    """Every configuration as a point, coloured by profile, and the Pareto front as a line through the best."""
    import altair as alt

    points = (
        alt.Chart(tradeoff)
        .mark_circle(size=70)
        .encode(
            x=alt.X("ttft_p95_s", title="p95 TTFT (s)"),
            y=alt.Y("cost_per_hour", title="$ per hour"),
            color="profile",
            tooltip=["profile", "replicas", "cost_per_hour", "ttft_p95_s", "itl_p50_s"],
        )
    )
    front = (
        alt.Chart(pareto_front(tradeoff))
        .mark_line(color="black", strokeDash=[4, 3])
        .encode(x="ttft_p95_s", y="cost_per_hour")
    )
    return points + front


def traffic_from_prometheus(answers: dict[str, dict[str, float]], model: str) -> Traffic | None:
    """Peak rate and mean lengths of a model's recent traffic, or None when it had none."""
    rate = answers["rate"].get(model, 0.0)
    prompt, output = answers["prompt"].get(model, math.nan), answers["output"].get(model, math.nan)
    if not (rate > 0 and math.isfinite(prompt) and math.isfinite(output) and prompt > 0 and output > 0):
        return None
    return Traffic(rate, prompt, output)


def trace_runs(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary per policy and the replicas over time of each, from simulated runs."""
    summary = pd.DataFrame(
        [
            {
                k: r.summary[k]
                for k in ("policy", "slo_attainment", "gpu_hours", "cost_usd", "max_replicas", "scale_actions")
            }
            for r in results
        ]
    )
    timeline = pd.concat(
        [
            r.timeline.assign(policy=r.summary["policy"], replicas=r.timeline["ready"] + r.timeline["starting"])[
                ["time_s", "policy", "replicas"]
            ]
            for r in results
        ],
        ignore_index=True,
    )
    return summary, timeline


def traffic_inputs(st, prometheus_url: str) -> tuple[Traffic | None, str | None]:
    """The traffic to plan for, and the trace file to simulate when one was given."""
    source = st.radio("Traffic", ["Rate and length mix", "Trace file", "A model's recent traffic"], horizontal=True)
    if source == "Rate and length mix":
        c1, c2, c3 = st.columns(3)
        return Traffic(
            c1.number_input("Peak requests/s", 0.01, 1e5, 20.0),
            c2.number_input("Mean prompt tokens", 1.0, 131072.0, 1000.0),
            c3.number_input("Mean output tokens", 1.0, 32768.0, 200.0),
        ), None
    if source == "Trace file":
        return trace_input(st)
    return prometheus_input(st, prometheus_url), None


def trace_input(st) -> tuple[Traffic | None, str | None]:
    import tempfile
    from pathlib import Path

    from autoscaler.planner.inputs import traffic_from_trace

    upload = st.file_uploader("Azure .csv or JSONL replay file", type=["csv", "jsonl"])
    path = st.text_input("or a path on the console's machine (a ServeGen folder too)")
    if upload is not None:
        path = str(Path(tempfile.mkdtemp()) / upload.name)
        Path(path).write_bytes(upload.getvalue())
    if not path:
        st.info("Upload a trace or give its path.")
        return None, None
    try:
        traffic, _ = traffic_from_trace(path)
    except (OSError, ValueError) as err:
        st.error(f"Cannot read the trace: {err}")
        return None, None
    st.caption(
        f"Busiest 5 minutes: {traffic.rate_rps:.3g} req/s; mean prompt {traffic.prompt_tokens:.0f}, "
        f"output {traffic.output_tokens:.0f} tokens."
    )
    return traffic, path


def prometheus_input(st, url: str) -> Traffic | None:
    from ui import fetch
    from ui.common import unavailable_as_message
    from ui.prom import by_label

    days = st.slider("Days of traffic", 1, 30, 7)
    now = fetch.now_s()
    with unavailable_as_message():
        answers = {
            k: by_label(fetch.instant(url, q.format(days=days), now).frame, "model_name")
            for k, q in (("rate", PEAK_RATE), ("prompt", PROMPT_MIX), ("output", OUTPUT_MIX))
        }
    if not answers["rate"]:
        st.info("No model has traffic in Prometheus yet: send some through the gateway, or enter a rate and a mix.")
        return None
    model = st.selectbox("Model", sorted(answers["rate"]))
    traffic = traffic_from_prometheus(answers, model)
    if traffic is None:
        st.info(f"{model} had no traffic over the last {days} day(s).")
        return None
    st.caption(
        f"Peak {traffic.rate_rps:.3g} req/s (`{PEAK_RATE.format(days=days)}`); mean prompt "
        f"{traffic.prompt_tokens:.0f} and output {traffic.output_tokens:.0f} tokens."
    )
    return traffic


def render() -> None:
    import streamlit as st

    from ui import fetch
    from ui.settings import settings

    config = settings()
    st.title("Capacity planner")
    traffic, trace = traffic_inputs(st, config.prometheus_url)
    c1, c2, c3, c4 = st.columns(4)
    slo = Slo(
        c1.number_input("TTFT SLO (s)", 0.1, 60.0, 1.0),
        c2.number_input("Mean ITL SLO (s)", 0.01, 1.0, 0.05),
        c3.number_input("Attainment goal", 0.5, 0.999, 0.99, format="%.3f"),
    )
    cold_start = c4.number_input("Cold start (s)", 0.0, 3600.0, 90.0)
    loaded = fetch.candidates(config.cache_dir / "atlas")
    chosen = st.multiselect("Candidate profiles", [c.profile for c in loaded], default=[c.profile for c in loaded])
    gpu_prices = pd.DataFrame(
        sorted({(c.gpu, c.price_per_gpu_hour) for c in loaded}), columns=["gpu", "usd_per_gpu_hour"]
    )
    edited = st.data_editor(gpu_prices, hide_index=True, disabled=["gpu"], key="gpu_prices")
    if traffic is None or not chosen:
        return
    pool = with_prices([c for c in loaded if c.profile in chosen], dict(zip(edited["gpu"], edited["usd_per_gpu_hour"])))
    rows = plan(traffic, slo, pool)
    show_plan(st, traffic, slo, pool, rows)
    if (
        trace
        and (best := cheapest(rows))
        and st.button(f"Simulate the trace on {best.profile}: predictive against the best tuned HPA")
    ):
        simulate_trace(st, trace, best, slo, cold_start, config.cache_dir)


def show_plan(st, traffic: Traffic, slo: Slo, pool: list[Candidate], rows: list[PlanRow]) -> None:
    best = cheapest(rows)
    if best:
        st.success(
            f"Cheapest: **{best.profile}**, {best.replicas} replica(s) = {best.gpus} {best.gpu} GPU(s), "
            f"${best.cost_per_hour:.2f}/h, ${best.cost_per_million_output_tokens:.3f} per 1M output tokens."
            + (f" One fewer: {best.why_not_fewer}." if best.why_not_fewer else "")
        )
    else:
        st.warning("No candidate profile meets this SLO for this traffic: see each row's note.")
    frame = plan_frame(rows)
    st.dataframe(
        frame.style.apply(
            lambda r: ["background-color: #d4edda" if best and r["profile"] == best.profile else "" for _ in r], axis=1
        ),
        hide_index=True,
    )
    st.download_button("Download the plan as CSV", frame.to_csv(index=False), "plan.csv", "text/csv")
    st.caption(
        "Replicas from each profile's capacity atlas (one replica's SLO attainment measured on the engine model "
        "over length mixes and rates); the same plan as `headroom plan`."
    )
    st.subheader("Cost against latency")
    tradeoff = tradeoff_frame(traffic, slo, pool, rows)
    if tradeoff.empty:
        st.info("No profile meets the SLO, so there is no trade-off to draw.")
    else:
        st.altair_chart(tradeoff_chart(tradeoff), use_container_width=True)
        st.caption(
            "Each profile from its planned replicas to four more; the dashed line is the Pareto front (no "
            "configuration is both cheaper and faster than one on it)."
        )
        st.dataframe(pareto_front(tradeoff), hide_index=True)


def simulate_trace(st, trace: str, best: PlanRow, slo: Slo, cold_start: float, cache_dir) -> None:
    from autoscaler.sim.args import SimulateArgs
    from autoscaler.sim.sweep import sweep

    args = SimulateArgs(
        trace=trace,
        policies=TRACE_POLICIES,
        profile=best.profile,
        slo_ttft_s=slo.ttft_s,
        slo_itl_s=slo.itl_s,
        cold_start_s=cold_start,
        price=best.price_per_gpu_hour,
        initial_replicas=best.replicas,
        max_replicas=max(4 * best.replicas, 8),
        cache_dir=cache_dir,
    )
    with st.status("Simulating (the HPA's target is tuned: several runs)") as status:
        results, _ = sweep(args, slo.goal, progress=status.write)
    summary, timeline = trace_runs(results)
    st.dataframe(summary, hide_index=True)
    st.line_chart(timeline, x="time_s", y="replicas", color="policy")
