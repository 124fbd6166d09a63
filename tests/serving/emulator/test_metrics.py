"""/metrics and the GPU endpoint against the contracts of DESIGN.md, parsed with prometheus_client's parser."""

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import EmulatorServer

# Written out from DESIGN.md, independently of the emulator's own constants.
TTFT = [
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
    20,
    40,
    80,
    160,
    640,
    2560,
]
ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80]
REQ = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680]
ITER = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
VLLM_CONTRACT = {
    "vllm:num_requests_running": ("gauge", None),
    "vllm:num_requests_waiting": ("gauge", None),
    "vllm:kv_cache_usage_perc": ("gauge", None),
    "vllm:cache_config_info": ("gauge", None),
    "vllm:prompt_tokens": ("counter", None),
    "vllm:generation_tokens": ("counter", None),
    "vllm:request_success": ("counter", None),
    "vllm:num_preemptions": ("counter", None),
    "vllm:prefix_cache_queries": ("counter", None),
    "vllm:prefix_cache_hits": ("counter", None),
    "vllm:time_to_first_token_seconds": ("histogram", TTFT),
    "vllm:inter_token_latency_seconds": ("histogram", ITL),
    "vllm:request_time_per_output_token_seconds": ("histogram", ITL),
    "vllm:e2e_request_latency_seconds": ("histogram", REQ),
    "vllm:request_queue_time_seconds": ("histogram", REQ),
    "vllm:request_inference_time_seconds": ("histogram", REQ),
    "vllm:request_prefill_time_seconds": ("histogram", REQ),
    "vllm:request_decode_time_seconds": ("histogram", REQ),
    "vllm:request_prompt_tokens": ("histogram", "1-2-5"),
    "vllm:request_generation_tokens": ("histogram", "1-2-5"),
    "vllm:iteration_tokens_total": ("histogram", ITER),
}
DCGM = {
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_XID_ERRORS",
}
DCGM_LABELS = {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"}


def families(url):
    return {f.name: f for f in text_string_to_metric_families(httpx.get(url).text)}


def buckets(family):
    return sorted(
        float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    )


@pytest.fixture(scope="module")
def loaded_server():
    with EmulatorServer() as s:
        for i in range(5):
            r = httpx.post(
                f"{s.url}/v1/completions",
                json={"model": s.model, "prompt": "w " * (50 + i), "max_tokens": 10, "ignore_eos": True},
                timeout=30,
            )
            assert r.status_code == 200
        yield s


def test_vllm_metrics_match_contract(loaded_server):
    fams = families(f"{loaded_server.url}/metrics")
    vllm = {n: f for n, f in fams.items() if n.startswith("vllm:")}
    assert set(VLLM_CONTRACT) <= set(vllm), (
        "every vLLM metric of the contract (the rest: test_every_family_of_real_vllm)"
    )
    for name, (kind, expected) in VLLM_CONTRACT.items():
        family = vllm[name]
        assert family.type == kind, name
        for sample in family.samples:
            assert sample.labels["engine"] == "0"
            if name != "vllm:cache_config_info":  # real vLLM labels it by engine alone (docs/metrics.md)
                assert sample.labels["model_name"] == loaded_server.model
        if expected == "1-2-5":
            b = buckets(family)
            assert b[:6] == [1, 2, 5, 10, 20, 50] and b[-1] <= 131072 and b[-1] * 2 > 131072 / 2.5
        elif expected:
            assert buckets(family) == [float(x) for x in expected], name
    counters = {s.name for f in vllm.values() if f.type == "counter" for s in f.samples}
    assert "vllm:generation_tokens_total" in counters and "vllm:prompt_tokens_total" in counters
    reasons = {s.labels["finished_reason"] for s in vllm["vllm:request_success"].samples}
    assert reasons == {"stop", "length", "abort", "error"}
    info = vllm["vllm:cache_config_info"].samples[0].labels
    assert info["block_size"] == "16" and int(info["num_gpu_blocks"]) > 0
    assert not [n for n in fams if n in ("vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds")]


def test_vllm_metric_values_follow_traffic(loaded_server):
    fams = families(f"{loaded_server.url}/metrics")
    value = lambda name, suffix="": next(s.value for s in fams[name].samples if s.name == name + suffix)
    assert value("vllm:generation_tokens", "_total") == 50
    assert value("vllm:prompt_tokens", "_total") == sum(50 + i for i in range(5))
    assert value("vllm:time_to_first_token_seconds", "_count") == 5
    assert value("vllm:inter_token_latency_seconds", "_count") == 45
    length = next(s.value for s in fams["vllm:request_success"].samples if s.labels["finished_reason"] == "length")
    assert length == 5
    assert value("vllm:num_requests_running") == 0


def test_http_metrics(loaded_server):
    fams = families(f"{loaded_server.url}/metrics")
    samples = [s for s in fams["http_requests"].samples if s.name == "http_requests_total"]
    assert any(
        s.labels == {"handler": "/v1/completions", "method": "POST", "status": "2xx"} and s.value >= 5 for s in samples
    )
    assert fams["http_request_duration_seconds"].type == "histogram"


def test_gpu_endpoint_matches_dcgm_contract(loaded_server):
    text = httpx.get(f"{loaded_server.gpu_url}/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(fams) == DCGM
    assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter" in text
    assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total" not in text  # dcgm-exporter's name, no suffix
    for name, family in fams.items():
        for sample in family.samples:
            assert set(sample.labels) == DCGM_LABELS, name
    get = lambda n: fams[n].samples[0].value
    assert get("DCGM_FI_DEV_FB_USED") > 15_000  # 16 GB of weights are resident
    assert get("DCGM_FI_DEV_FB_USED") + get("DCGM_FI_DEV_FB_FREE") + get("DCGM_FI_DEV_FB_RESERVED") == pytest.approx(
        80 * 1024, abs=2
    )
    assert 70 <= get("DCGM_FI_DEV_POWER_USAGE") <= 700
    assert get("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION") > 0


def test_tensor_parallel_replica_exports_each_gpu():
    with EmulatorServer("llama-3.1-70b-h100-tp4") as s:
        fams = families(f"{s.gpu_url}/metrics")
        gpus = {x.labels["gpu"] for x in fams["DCGM_FI_DEV_GPU_UTIL"].samples}
        assert gpus == {"0", "1", "2", "3"}
        assert len({x.labels["UUID"] for x in fams["DCGM_FI_DEV_GPU_UTIL"].samples}) == 4


REAL_SCRAPES = (  # vLLM 0.20.2's own /metrics: the reference one, and ours after load on the GPU host's H100 and H200
    Path(__file__).resolve().parents[3].parent / "shared" / "data" / "reference" / "vllm-0.20.2-metrics.txt",
    Path(__file__).resolve().parents[3] / "bench" / "data" / "vllm-h100" / "metrics_after_load.txt",
    Path(__file__).resolve().parents[3] / "bench" / "data" / "vllm-h200" / "metrics_after_load.txt",
)
TOKEN_HISTOGRAMS = {  # their buckets follow max_model_len (1, 2, 5, 10, ... up to it)
    "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens",
    "vllm:request_max_num_generation_tokens",
    "vllm:request_params_max_tokens",
    "vllm:request_prefill_kv_computed_tokens",
}


def shapes(text: str) -> dict[str, tuple]:
    """Each vllm: family: its type, label names and (but for token histograms) bucket bounds."""
    found = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("vllm:") or family.name.endswith("_created") or not family.samples:
            continue
        labels = frozenset(k for s in family.samples for k in s.labels if k not in ("le", "quantile"))
        bounds = tuple(buckets(family)) if family.type == "histogram" and family.name not in TOKEN_HISTOGRAMS else ()
        found[family.name] = (family.type, labels, bounds)
    return found


@pytest.mark.parametrize("scrape", REAL_SCRAPES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_family_of_real_vllm_is_exported_alike(loaded_server, scrape):
    """Name by name: the type, the label names and the bucket bounds of every vllm: family real vLLM 0.20.2
    exported (36 families, without the _created series)."""
    real = shapes(scrape.read_text())
    ours = shapes(httpx.get(f"{loaded_server.url}/metrics").text)
    assert len(real) == 36
    assert sorted(set(real) - set(ours)) == []
    assert {name: ours[name] for name in real if ours[name] != real[name]} == {}


def test_the_new_families_carry_the_engine_models_values(loaded_server):
    fams = families(f"{loaded_server.url}/metrics")
    value = lambda name, **labels: next(
        s.value for s in fams[name].samples if all(s.labels.get(k) == v for k, v in labels.items())
    )
    prompts = value("vllm:prompt_tokens", model_name=loaded_server.model)
    computed = value("vllm:prompt_tokens_by_source", source="local_compute")
    cached = value("vllm:prompt_tokens_by_source", source="local_cache_hit")
    assert computed + cached == prompts and value("vllm:prompt_tokens_cached") == cached
    through_the_model = computed + value("vllm:generation_tokens")  # cached prompt tokens are not recomputed
    per_token = value("vllm:estimated_flops_per_gpu") / through_the_model
    assert 2 * 6e9 < per_token < 2 * 9e9  # 2 x the parameters of an 8B model, plus short contexts' attention
    assert value("vllm:estimated_read_bytes_per_gpu") > 16e9  # the weights, read at every step
    assert 0 < value("vllm:estimated_write_bytes_per_gpu") < value("vllm:estimated_read_bytes_per_gpu")
    assert value("vllm:engine_sleep_state", sleep_state="awake") == 1
    n_count = next(s.value for s in fams["vllm:request_params_n"].samples if s.name.endswith("_count"))
    max_tokens_sum = next(s.value for s in fams["vllm:request_params_max_tokens"].samples if s.name.endswith("_sum"))
    assert n_count == 5 and max_tokens_sum == 50
