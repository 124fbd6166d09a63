"""Campaign files: validation with clear errors, the requests they plan, shipped campaigns."""

from pathlib import Path

import numpy as np
import pytest

from loadgen.campaign import CampaignError, campaign_workload, load_campaign

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "loadgen" / "campaigns").glob("*.yaml"))
TRACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "traces"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


BASE = "name: t\ntarget: http://127.0.0.1:8000\nmodel: m\n"


def test_constant_campaign_plans_exact_lengths(tmp_path):
    c = load_campaign(
        write(
            tmp_path,
            BASE + "shape: {kind: constant, rate: 4}\nduration_s: 30\n"
            "lengths: {prompt_tokens: 100, output_tokens: 20}\narrivals: {process: constant}\n",
        )
    )
    w = campaign_workload(c)
    assert len(w) == 120 and set(w.prompt_tokens) == {100} and set(w.output_tokens) == {20}
    assert c.base_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("shape: {kind: constant, rate: 4}\n", "needs the campaign's duration_s"),
        ("shape: {kind: square, rate: 4}\nduration_s: 5\n", "shape: Input tag 'square'"),
        (
            "shape: {kind: constant, rate: 0}\nduration_s: 5\n",
            "shape.constant.rate: Input should be greater than 0 (got 0)",
        ),
        (
            "shape: {kind: constant, rate: 4}\nduration_s: 5\nslo: {ttft: 1}\n",
            "slo.ttft: Extra inputs are not permitted",
        ),
        ("shape: {kind: trace, path: x.csv, start_s: 50, end_s: 10}\n", "end_s (10.0) must be after start_s (50.0)"),
    ],
)
def test_bad_campaigns_name_the_key_and_value(tmp_path, text, expected):
    with pytest.raises(CampaignError) as info:
        load_campaign(write(tmp_path, BASE + text))
    assert expected in str(info.value) and "c.yaml" in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(CampaignError, match="no such file"):
        load_campaign(tmp_path / "missing.yaml")
    with pytest.raises(CampaignError, match="not valid YAML"):
        load_campaign(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(CampaignError, match="expected a mapping"):
        load_campaign(write(tmp_path, "- a\n- b\n"))


@pytest.mark.skipif(not TRACES.exists(), reason="needs ../shared/data/traces")
def test_trace_replay_with_scaling(tmp_path):
    trace = TRACES / "AzureLLMInferenceTrace_conv.csv"
    c = load_campaign(
        write(tmp_path, BASE + f"shape: {{kind: trace, path: {trace}, start_s: 0, end_s: 600, time_scale: 10}}\n")
    )
    w = campaign_workload(c)
    assert w.duration_s <= 60.5 and len(w) > 1000  # ten minutes of the trace in one
    assert np.all(w.prompt_tokens > 0)


def test_shipped_campaigns_are_valid():
    assert len(SHIPPED) >= 6
    for path in SHIPPED:
        campaign = load_campaign(path)
        traces = [campaign.lengths.from_trace, getattr(campaign.shape, "path", None)]
        if all(t is None or Path(t).exists() for t in traces):  # the Azure ones need ../shared beside the clone
            assert len(campaign_workload(campaign)) > 0
