"""Shipped profiles load, size their KV caches plausibly, and bad input names what is wrong."""

import pytest

from serving.profiles import ProfileError, gpu_price_per_hour, list_profiles, load_profile

REQUIRED = [
    "llama-3.1-8b-l4",
    "llama-3.1-8b-a10g",
    "llama-3.1-8b-a100-80gb",
    "llama-3.1-8b-h100",
    "llama-3.1-8b-h200",
    "llama-3.1-70b-h100-tp4",
    "llama-3.1-70b-h200-tp2",
]


def test_required_profiles_are_shipped():
    assert set(REQUIRED) <= set(list_profiles())


@pytest.mark.parametrize("name", list_profiles())
def test_profile_is_consistent(name):
    p = load_profile(name)
    assert p.kv_capacity_tokens >= p.model.max_model_len
    assert p.weights_per_gpu_bytes < p.gpu.memory_gib * 2**30
    assert p.sources
    assert gpu_price_per_hour(p.gpu.name) > 0


def test_kv_cache_size_matches_vllm_order_of_magnitude():
    # vLLM reports roughly 450k KV tokens for Llama-3.1-8B on one 80 GB H100 at gpu_memory_utilization 0.9
    tokens = load_profile("llama-3.1-8b-h100").kv_capacity_tokens
    assert 380_000 < tokens < 520_000
    assert load_profile("llama-3.1-8b-h100").model.kv_bytes_per_token == 131072


def test_unknown_profile_names_the_choices():
    with pytest.raises(ProfileError, match="unknown profile 'nope'.*llama-3.1-8b-h100"):
        load_profile("nope")


def test_missing_file_and_bad_fields(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(str(tmp_path / "x.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nmodel: llama-3.1-8b\ngpu: H100\nefficiency: vllm-v1\ntensor_parallel: 0\n")
    with pytest.raises(ProfileError, match="tensor_parallel"):
        load_profile(str(bad))
    bad.write_text("name: b\nmodel: llama-3.1-70b\ngpu: L4\nefficiency: vllm-v1\n")
    with pytest.raises(ProfileError, match="leave no KV cache"):
        load_profile(str(bad))
    bad.write_text("name: b\nmodel: gpt-9\ngpu: H100\nefficiency: vllm-v1\n")
    with pytest.raises(ProfileError, match="unknown model 'gpt-9'"):
        load_profile(str(bad))
