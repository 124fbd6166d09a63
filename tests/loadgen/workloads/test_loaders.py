"""Trace loaders: the shipped traces load; malformed rows name file, line, column and value; scaling; synthesis."""

import numpy as np
import pytest

from loadgen.workloads.azure import load_azure
from loadgen.workloads.jsonl import load_jsonl
from loadgen.workloads.servegen import LengthSampler, load_client, load_servegen, synthesize, window_counts
from loadgen.workloads.workload import TraceError, Workload
from tests.helpers import SHARED_DATA

TRACES = SHARED_DATA / "traces"
needs_traces = pytest.mark.skipif(not TRACES.exists(), reason="../shared/data/traces is not beside the repository")


@needs_traces
def test_azure_traces_load_with_published_stats():
    conv = load_azure(TRACES / "AzureLLMInferenceTrace_conv.csv")
    code = load_azure(TRACES / "AzureLLMInferenceTrace_code.csv")
    assert len(conv) == 19366 and len(code) == 8819
    assert conv.duration_s == pytest.approx(3502, abs=1) and conv.mean_rate == pytest.approx(5.53, abs=0.01)
    assert np.median(conv.prompt_tokens) == 1020 and np.median(code.output_tokens) == 13


@needs_traces
def test_servegen_m_large_totals_match_readme():
    windows = load_servegen(TRACES / "servegen" / "m-large")
    assert len(windows.clients) == 162 and len(windows.start_s) == 2016
    assert windows.total_rate().mean() == pytest.approx(196, abs=1)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("TIME,ContextTokens,GeneratedTokens\n", 1, "header"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,12,3\nyesterday,1,1\n", 3, "TIMESTAMP"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,twelve,3\n", 2, "ContextTokens"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,0,3\n", 2, "ContextTokens"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,5,-1\n", 2, "GeneratedTokens"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,5\n", 2, "row"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:05,5,1\n2023-11-16 18:17:04,5,1\n", 3, "TIMESTAMP"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", 2, "row"),
    ],
)
def test_azure_errors_name_line_and_column(tmp_path, text, line, column):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(TraceError) as err:
        load_azure(path)
    assert err.value.line == line and err.value.column == column
    assert str(path) in str(err.value) and f":{line}:" in str(err.value)


def test_azure_crlf_without_final_newline(tmp_path):
    path = write(
        tmp_path,
        "t.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03.9799600,4808,10\r\n"
        "2023-11-16 18:17:04.0319600,3180,8",
    )
    w = load_azure(path)
    assert w.arrival_s.tolist() == pytest.approx([0.0, 0.052]) and w.prompt_tokens.tolist() == [4808, 3180]


def test_jsonl_loads_sorts_and_expands_hash_ids(tmp_path):
    path = write(
        tmp_path,
        "t.jsonl",
        '{"timestamp": 1500, "input_length": 10, "output_length": 2}\n\n'
        '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [7, 8]}\n',
    )
    w = load_jsonl(path)
    assert w.arrival_s.tolist() == [0.0, 1.5] and w.prompt_tokens.tolist() == [600, 10]
    assert len(w.prefix(0)) == 64 and w.prefix(1) == ()


@pytest.mark.parametrize(
    "text, column",
    [
        ("{not json}\n", "line"),
        ("[1, 2]\n", "line"),
        ('{"input_length": 1, "output_length": 1}\n', "timestamp"),
        ('{"timestamp": "soon", "input_length": 1, "output_length": 1}\n', "timestamp"),
        ('{"timestamp": 1, "input_length": 0, "output_length": 1}\n', "input_length"),
        ('{"timestamp": 1, "input_length": 2, "output_length": 1.5}\n', "output_length"),
        ('{"timestamp": 1, "input_length": 2, "output_length": 1, "hash_ids": "abc"}\n', "hash_ids"),
    ],
)
def test_jsonl_errors(tmp_path, text, column):
    path = write(tmp_path, "t.jsonl", '{"timestamp": 0, "input_length": 1, "output_length": 1}\n' + text)
    with pytest.raises(TraceError) as err:
        load_jsonl(path)
    assert err.value.line == 2 and err.value.column == column


@pytest.mark.parametrize(
    "row, column",
    [
        ("600,abc,0,,0,0", "rate"),
        ("600,1.0,2.0,Pareto,1,1", "family"),
        ("600,1.0,2.0,,0,0", "family"),
        ("600,1.0,2.0,Gamma,0,1", "shape"),
        ("600,1.0", "row"),
        ("0,1.0,1.0,Gamma,1,1", "window_start"),
    ],
)
def test_servegen_errors(tmp_path, row, column):
    path = write(tmp_path, "chunk-1-trace.csv", "0,0,0,,0,0\n" + row + "\n")
    with pytest.raises(TraceError) as err:
        load_client(path)
    assert err.value.line == 2 and err.value.column == column


def test_servegen_synthesis_hits_window_rates_and_is_reproducible(tmp_path):
    write(tmp_path, "chunk-1-trace.csv", "0,2.0,1.0,Gamma,1.0,0.5\n600,0,0,,0,0\n1200,5.0,3.0,Weibull,0.4,0.2\n")
    write(tmp_path, "chunk-2-trace.csv", "0,1.0,1.0,Gamma,1.0,1.0\n600,1.0,1.0,Gamma,1.0,1.0\n1200,0,0,,0,0\n")
    windows = load_servegen(tmp_path)
    assert windows.total_rate().tolist() == [3.0, 1.0, 5.0]
    lengths = LengthSampler.lognormal(500, 100)
    a = synthesize(windows, lengths, seed=3)
    b = synthesize(windows, lengths, seed=3)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    counts = np.histogram(a.arrival_s, bins=[0, 600, 1200, 1800])[0]
    assert counts / 600 == pytest.approx([3.0, 1.0, 5.0], rel=0.1)
    part = synthesize(windows, lengths, seed=3, start_s=600, end_s=1200)
    assert 0 <= part.arrival_s.min() and part.arrival_s.max() < 600


def test_scaling_time_and_rate():
    w = Workload("w", np.arange(1000, dtype=float), np.full(1000, 10), np.full(1000, 5))
    fast = w.scaled(time_scale=2.0)
    assert fast.duration_s == pytest.approx(499.5)
    double = w.scaled(rate_scale=2.0, seed=1)
    assert len(double) == 2000 and np.all(np.diff(double.arrival_s) >= 0)
    half = w.scaled(rate_scale=0.5, seed=1)
    assert 400 < len(half) < 600
    assert np.array_equal(w.scaled(rate_scale=1.5, seed=4).arrival_s, w.scaled(rate_scale=1.5, seed=4).arrival_s)
    with pytest.raises(ValueError, match="positive"):
        w.scaled(time_scale=0)
    assert len(w.window(100, 200)) == 100 and w.window(100, 200).arrival_s[0] == 0


def test_servegen_counts_are_the_synthesized_arrivals_binned(tmp_path):
    (tmp_path / "chunk-1-trace.csv").write_text("0,2.0,4.0,Weibull,0.3,0.2\n600,1.0,1.0,Gamma,1.0,1.0\n")
    (tmp_path / "chunk-2-trace.csv").write_text("0,3.0,1.0,Gamma,1.0,0.3\n600,0,0,,0,0\n")
    windows = load_servegen(tmp_path)
    counts = window_counts(windows, 5.0, seed=1)
    assert len(counts) == 240
    assert counts[:120].sum() / 600 == pytest.approx(5.0, rel=0.05)  # each window's gaps are rescaled to its rate
    assert counts[120:].sum() / 600 == pytest.approx(1.0, rel=0.1)
    assert np.array_equal(counts, window_counts(windows, 5.0, seed=1))
    assert counts[:120].var() > 2 * counts[:120].mean()  # a bursty client: over-dispersed counts
    arrivals = synthesize(windows, LengthSampler.lognormal(100, 50), seed=1).arrival_s
    assert np.array_equal(counts, np.bincount((arrivals // 5.0).astype(int), minlength=240))
    part = window_counts(windows, 5.0, seed=1, start_s=600, end_s=900)
    later = synthesize(windows, LengthSampler.lognormal(100, 50), seed=1, start_s=600, end_s=900).arrival_s
    assert len(part) == 60 and np.array_equal(part, np.bincount((later // 5.0).astype(int), minlength=60))


def test_servegen_windows_scale_like_a_trace(tmp_path):
    (tmp_path / "chunk-1-trace.csv").write_text("0,2.0,1.0,Gamma,1.0,0.5\n600,4.0,1.0,Gamma,1.0,0.25\n")
    windows = load_servegen(tmp_path).scaled(time_scale=2.0, rate_scale=0.5)
    assert windows.window_s == 300 and windows.start_s.tolist() == [0, 300]
    assert windows.total_rate().tolist() == [2.0, 4.0]  # twice as fast, half the requests: the same rate
    with pytest.raises(ValueError, match="positive"):
        load_servegen(tmp_path).scaled(rate_scale=0)
