"""The server's cost of a prompt: the measured requests summarized, and the device script's scrape parsing."""

import math
from pathlib import Path

import pytest

from bench.prompt_cost import outside_engine, per_token_line, prompt_cost_section

REAL_SCRAPE = Path(__file__).resolve().parents[2] / "bench" / "data" / "vllm-h200" / "metrics_after_load.txt"


def test_a_line_through_exact_costs_gives_them_back(tmp_path):
    path = tmp_path / "prompt_cost.csv"
    rows = ["prompt_tokens,client_s,request_queue_time_seconds,request_prefill_time_seconds"]
    for n in (128, 1024, 4096):
        rows.append(f"{n},{0.007 + 2.5e-6 * n + 0.001 + 0.02},0.001,0.02")
    path.write_text("\n".join(rows) + "\n")
    fixed, per_token = per_token_line(outside_engine(path))
    assert fixed == pytest.approx(0.007) and per_token == pytest.approx(2.5e-6)


def test_the_measured_h100_requests_cost_microseconds_a_prompt_token():
    fixed, per_token = per_token_line(outside_engine())
    assert 0.001 < fixed < 0.02 and 1e-6 < per_token < 5e-6
    assert "| 16,384 |" in prompt_cost_section()


def test_an_empty_measurement_is_refused(tmp_path):
    path = tmp_path / "prompt_cost.csv"
    path.write_text("prompt_tokens,client_s,request_queue_time_seconds,request_prefill_time_seconds\n")
    with pytest.raises(ValueError, match="no requests"):
        outside_engine(path)


def test_the_device_script_reads_the_histograms_sums_from_a_real_scrape():
    from bench.vllm_device.prompt_cost import histogram_sums

    sums = histogram_sums(REAL_SCRAPE.read_text())
    assert sums["request_queue_time_seconds"] == pytest.approx(2019.0210232620084)
    assert sums["request_prefill_time_seconds"] == pytest.approx(2434.1188115129953)
    assert math.isnan(histogram_sums("")["request_queue_time_seconds"])
