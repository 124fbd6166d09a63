"""Per-request SLO outcomes: which SLOs a request's timings measure, and whether each was met."""

import pytest

from exporters.gateway.config import SloThresholds
from exporters.gateway.slo import RequestTimings, slo_outcomes, time_per_output_token


def test_a_streamed_answer_is_judged_on_every_slo_with_a_threshold():
    slo = SloThresholds(ttft_s=0.3, tpot_s=0.03, e2e_s=2.0)
    assert slo_outcomes(RequestTimings(e2e_s=2.5, ttft_s=0.3, tpot_s=0.031), slo) == [
        ("ttft", True),
        ("tpot", False),
        ("e2e", False),
    ]


def test_a_whole_answer_is_judged_end_to_end_only():
    assert slo_outcomes(RequestTimings(e2e_s=1.0), SloThresholds(e2e_s=1.5)) == [("e2e", True)]


def test_an_slo_without_threshold_is_not_counted():
    assert slo_outcomes(RequestTimings(e2e_s=9.0, ttft_s=0.1, tpot_s=0.01), SloThresholds(tpot_s=None)) == [
        ("ttft", True)
    ]


def test_time_per_output_token_spans_the_tokens_after_the_first():
    assert time_per_output_token(10.0, 10.8, 5) == pytest.approx(0.2)
    assert time_per_output_token(10.0, 10.0, 1) is None  # one token: no time between tokens
    assert time_per_output_token(None, None, 5) is None


def test_thresholds_must_be_positive():
    with pytest.raises(ValueError, match="ttft_s"):
        SloThresholds(ttft_s=0)
