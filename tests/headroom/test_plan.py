"""`headroom plan` argument handling: what is missing or malformed is named; prices and JSON are well-formed."""

import argparse
import math

import pytest

from autoscaler.planner.core import Slo, Traffic, plan_one
from headroom.plan import add_arguments, json_safe, parse_prices, traffic_from_args
from tests.autoscaler.planner.test_core import candidate


def parsed(*argv: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_missing_traffic_names_the_flags():
    with pytest.raises(ValueError, match="missing --prompt-tokens, --output-tokens"):
        traffic_from_args(parsed("--rate", "3"))


def test_a_trace_gives_what_the_flags_leave_out(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        "".join(f'{{"timestamp": {i * 100}, "input_length": 300, "output_length": 50}}\n' for i in range(50))
    )
    traffic = traffic_from_args(parsed("--trace", str(trace), "--output-tokens", "80"))
    assert traffic.prompt_tokens == 300 and traffic.output_tokens == 80
    assert traffic.rate_rps == pytest.approx(50 / 4.9)  # shorter than the peak window: its mean rate


def test_prices_parse_and_bad_ones_are_named():
    assert parse_prices(["H100=2.5", "L4=0.8"]) == {"H100": 2.5, "L4": 0.8}
    for bad in ("H100", "H100=cheap", "=2", "H100=-1", "H100=nan"):
        with pytest.raises(ValueError, match=f"--price '{bad}'"):
            parse_prices([bad])


def test_json_rows_hold_the_promised_keys_and_no_nan():
    row = json_safe(plan_one(Traffic(1.0, 512, 128), Slo(ttft_s=0.01), candidate("a", 1, 1.0)))
    for key in ("profile", "gpu", "replicas", "gpus", "cost_per_hour", "cost_per_million_output_tokens", "meets_slo"):
        assert key in row
    assert row["cost_per_million_output_tokens"] is None and row["meets_slo"] is False
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.values())
