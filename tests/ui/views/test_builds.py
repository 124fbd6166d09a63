"""The console pages' pure builds, without Streamlit: tables from known answers, plain words, empty states."""

import json
import math

import pandas as pd
import pytest

from autoscaler.planner.core import Slo, Traffic, plan
from tests.autoscaler.planner.test_core import candidate
from ui.prom import Answer
from ui.views import autoscaler, cost, planner, slos


def answer(rows: list[dict], query: str = "q") -> Answer:
    frame = pd.DataFrame([{**r, "time": 100.0} for r in rows]) if rows else pd.DataFrame(columns=["value", "time"])
    return Answer(query, frame, 100.0)


def test_cost_table_on_both_bases():
    answers = {
        cost.COST: answer([{"model_name": "m", "value": 10.0}]),
        cost.IDLE_COST: answer([{"model_name": "m", "value": 2.5}]),
        cost.GPUS: answer([{"model_name": "m", "value": 4.0}]),
        cost.OUTPUT_TOKENS: answer([{"model_name": "m", "value": 2e6}]),
        cost.PROMPT_TOKENS: answer([{"model_name": "m", "value": 5e6}]),
    }
    row = cost.model_table(answers).iloc[0]
    assert row["per_m_output_allocation"] == 5.0 and row["per_m_output_usage"] == 3.75
    assert row["per_m_prompt_allocation"] == 2.0 and row["busy_share"] == 0.75
    no_tokens = {**answers, cost.OUTPUT_TOKENS: answer([])}
    assert math.isnan(cost.model_table(no_tokens).iloc[0]["per_m_output_allocation"])
    assert cost.model_table({k: answer([]) for k in answers}).empty


def test_cost_queries_scale_recorded_samples_by_their_interval():
    queries = cost.model_queries(3600, {cost.COST: 30.0})
    assert queries[cost.COST] == "sum_over_time(model_name:headroom_cost_dollars_per_hour:sum[3600s]) * 0.00833333"
    assert "increase(vllm:generation_tokens_total" in queries[cost.OUTPUT_TOKENS]


def test_tenants_and_the_api_comparison():
    answers = {
        cost.TENANT_COST: answer([{"model_name": "m", "tenant": "a", "value": 3.0}]),
        cost.OUTPUT_TOKENS: answer([{"model_name": "m", "tenant": "a", "value": 1e6}]),
        cost.PROMPT_TOKENS: answer([]),
    }
    tenants = cost.tenant_table(answers)
    assert tenants.iloc[0]["per_m_output"] == 3.0 and tenants.iloc[0]["prompt_tokens"] == 0.0
    models = pd.DataFrame([{"model": "m", "prompt_tokens": 2e6, "output_tokens": 1e6, "cost_allocation": 4.0}])
    prices = pd.DataFrame([{"offer": "x", "usd_per_m_prompt": 0.5, "usd_per_m_output": 1.0}])
    row = cost.api_comparison(models, prices).iloc[0]
    assert row["api_cost"] == 2.0 and row["gpu_over_api"] == 2.0


def test_slo_table_attainment_burn_and_budget():
    answers = {k: answer([]) for k in slos.slo_queries()}
    for sli in slos.SLIS:
        answers[(sli, "objective")] = answer([{"model_name": "m", "value": 0.99}])
    answers[("ttft", "5m")] = answer([{"model_name": "m", "value": 0.05}])
    answers[("ttft", "3d")] = answer([{"model_name": "m", "value": 0.002}])
    row = slos.slo_table(answers).set_index("sli").loc["ttft"]
    assert row["attainment_5m"] == pytest.approx(0.95) and row["burn_5m"] == pytest.approx(5.0)
    assert row["budget_left"] == pytest.approx(0.8)
    assert slos.slo_table({k: answer([]) for k in slos.slo_queries()}).empty


def test_alerts_most_severe_first_with_runbooks():
    alerts = [
        {
            "labels": {"alertname": "B", "severity": "warning", "model_name": "m"},
            "status": {"state": "active"},
            "annotations": {"runbook_url": "http://r/B.md", "summary": "b"},
        },
        {"labels": {"alertname": "A", "severity": "critical"}, "annotations": {}},
    ]
    rows = slos.alert_rows(alerts)
    assert list(rows["alert"]) == ["A", "B"] and rows.iloc[1]["runbook"] == "http://r/B.md"
    assert rows.iloc[1]["labels"] == "model_name=m"


def test_decision_log_and_why_now(tmp_path):
    log = tmp_path / "d.jsonl"
    lines = [
        {
            "event": "decision",
            "target": "t",
            "time": 100.0 + i,
            "current": 2,
            "ready": 1,
            "desired": 3,
            "changed": True,
            "stale": False,
            "leading": True,
            "reasons": ["forecast peak 40 req/s", "step cap"],
        }
        for i in range(3)
    ]
    log.write_text("not json\n" + "\n".join(json.dumps(x) for x in lines) + '\n{"event": "policy_failed"}\n')
    decisions = autoscaler.read_decisions(log)
    assert len(decisions) == 3 and decisions.iloc[0]["time"] == pd.Timestamp(102.0, unit="s")
    words = autoscaler.why_now(decisions, "t")
    assert (
        words.startswith("t scales up to 3 replica(s), 1 of them ready") and "forecast peak 40 req/s; step cap" in words
    )
    assert autoscaler.why_now(decisions, "other") == "No decision for other in the log yet."


def test_planner_page_builds():
    traffic, slo = Traffic(100.0, 512, 128), Slo()
    pool = [candidate("cheap", 1, 2.0), candidate("dear", 1, 9.0), candidate("never", 1, 1.0, cliff=0.0)]
    rows = plan(traffic, slo, pool)
    assert planner.cheapest(rows).profile == "cheap"
    repriced = planner.with_prices(pool, {"H100": 20.0})
    assert {c.price_per_gpu_hour for c in repriced} == {20.0}
    tradeoff = planner.tradeoff_frame(traffic, slo, pool, rows)
    assert set(tradeoff["profile"]) == {"cheap", "dear"} and len(tradeoff) == 10
    front = planner.pareto_front(
        pd.DataFrame(
            [
                {"profile": "a", "cost_per_hour": 1.0, "ttft_p95_s": 0.5},
                {"profile": "b", "cost_per_hour": 2.0, "ttft_p95_s": 0.6},
                {"profile": "c", "cost_per_hour": 3.0, "ttft_p95_s": 0.2},
                {"profile": "d", "cost_per_hour": 1.0, "ttft_p95_s": 0.7},
            ]
        )
    )
    assert list(front["profile"]) == ["a", "c"]  # b is dearer and slower than a; d as dear as a and slower
    answers = {"rate": {"m": 5.0}, "prompt": {"m": 700.0}, "output": {"m": 150.0}}
    assert planner.traffic_from_prometheus(answers, "m") == Traffic(5.0, 700.0, 150.0)
    assert planner.traffic_from_prometheus({**answers, "rate": {"m": 0.0}}, "m") is None
