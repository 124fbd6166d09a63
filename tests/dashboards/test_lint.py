"""The PromQL lint: each mistake of the published vLLM dashboards caught, and the mixin's own queries clean."""

import pytest

from dashboards.lint import exposition_names, lint, metric_names
from tests.helpers import SHARED_DATA

KNOWN = exposition_names((SHARED_DATA / "reference" / "vllm-0.20.2-metrics.txt").read_text())


@pytest.mark.parametrize(
    "expr, problem",
    [
        (
            "avg(vllm:e2e_request_latency_seconds_sum) / avg(vllm:e2e_request_latency_seconds_count)",
            "not read through rate",
        ),
        ("rate(vllm:e2e_request_latency_seconds_sum[5m])", "without vllm:e2e_request_latency_seconds_count"),
        ("sum(vllm:time_to_first_token_seconds_bucket)", "not read through rate"),
        (
            "histogram_quantile(0.95, sum by (model_name) (rate(vllm:time_to_first_token_seconds_bucket[5m])))",
            "without `le`",
        ),
        ("vllm:gpu_cache_usage_perc", "in no vLLM 0.20.2 scrape"),
        ("rate(vllm:time_per_output_token_seconds_count[5m])", "in no vLLM 0.20.2 scrape"),
    ],
)
def test_each_mistake_is_caught(expr, problem):
    assert any(problem in p for p in lint(expr, KNOWN)), lint(expr, KNOWN)


@pytest.mark.parametrize(
    "expr",
    [
        'histogram_quantile(0.95, sum by (model_name, le) (rate(vllm:time_to_first_token_seconds_bucket{job="vllm"}[5m])))',
        "sum by (model_name) (rate(vllm:e2e_request_latency_seconds_sum[5m])) / sum by (model_name) (rate(vllm:e2e_request_latency_seconds_count[5m]))",
        "max by (model_name) (vllm:kv_cache_usage_perc)",
        "model_name:headroom_slo_ttft_errors:ratio_rate1h > 14.4 * 0.01",
    ],
)
def test_correct_queries_pass(expr):
    assert lint(expr, KNOWN) == []


def test_metric_names_skip_labels_functions_and_groupings():
    expr = 'sum by (model_name, le) (rate(vllm:x_bucket{le="1.0", job="vllm"}[5m])) * on (model_name) group_left a:b:c'
    assert metric_names(expr) == {"vllm:x_bucket", "a:b:c"}
