"""Model figures from Hugging Face config.json files (their published values), dense and mixture-of-experts."""

import pytest

from serving.engine.profile import ModelSpec
from serving.engine.steptime import BatchShape, StepTimeModel
from serving.profiles import ProfileError, load_profile
from serving.profiles.hf_config import model_spec

LLAMA_31_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}
QWEN3_30B_A3B = {
    "head_dim": 128,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "max_position_embeddings": 40960,
    "moe_intermediate_size": 768,
    "num_attention_heads": 32,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 48,
    "num_key_value_heads": 4,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "torch_dtype": "bfloat16",
    "vocab_size": 151936,
}
MIXTRAL_8X7B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
    "torch_dtype": "bfloat16",
    "vocab_size": 32000,
}


def test_a_dense_config_gives_the_shipped_llama_figures():
    spec = ModelSpec.model_validate(model_spec(LLAMA_31_8B, "meta-llama/Llama-3.1-8B-Instruct"))
    shipped = load_profile("llama-3.1-8b-h100").model
    assert spec.parameters == pytest.approx(shipped.parameters, rel=0.005)
    assert (spec.layers, spec.kv_heads, spec.head_dim, spec.max_model_len) == (32, 8, 128, 131072)
    assert spec.kv_bytes_per_token == shipped.kv_bytes_per_token and spec.active_parameters == spec.parameters


@pytest.mark.parametrize(
    "config, total, active",
    [(QWEN3_30B_A3B, 30.5e9, 3.3e9), (MIXTRAL_8X7B, 46.7e9, 12.9e9)],  # the model cards' figures
    ids=["qwen3-30b-a3b", "mixtral-8x7b"],
)
def test_mixture_of_experts_counts_total_and_active_parameters(config, total, active):
    spec = ModelSpec.model_validate(model_spec(config, "moe"))
    assert spec.parameters == pytest.approx(total, rel=0.01)
    assert spec.active_parameters == pytest.approx(active, rel=0.03)
    assert spec.experts == next(config[k] for k in ("num_experts", "num_local_experts") if k in config)


def test_an_moe_step_reads_only_the_experts_its_tokens_pick(tmp_path):
    """One decoding sequence reads the shared weights and 8 of 128 experts per layer; 256 read nearly all."""
    from serving.profiles import build_profile

    document = {"name": "q", "model": model_spec(QWEN3_30B_A3B, "q"), "gpu": "H100", "efficiency": "vllm-v1"}
    steps = StepTimeModel(build_profile(document, "test"))
    one, many = (steps.timing(BatchShape.of([(1, 1000)] * n)) for n in (1, 256))
    weights = steps.profile.model.weight_bytes
    assert one.bytes_moved < 0.25 * weights and many.bytes_moved > 0.95 * weights
    gemm = 2 * steps.profile.model.active_parameters  # and attention over the 1,000-token context beside it
    assert gemm < one.flops < 1.2 * gemm and many.flops == pytest.approx(256 * one.flops, rel=0.01)


@pytest.mark.parametrize(
    "change, named",
    [
        ({"quantization_config": {"quant_method": "fp8"}}, None),
        ({"quantization_config": {"quant_method": "awq"}}, "quantization 'awq'"),
        ({"kv_lora_rank": 512}, "multi-head latent attention"),
        ({"hidden_size": None}, "hidden_size"),
        ({"torch_dtype": "int8"}, "torch_dtype 'int8'"),
    ],
)
def test_what_cannot_be_modelled_is_named(change, named):
    config = {**LLAMA_31_8B, **change}
    if named is None:
        assert model_spec(config, "m")["dtype_bytes"] == 1.0
        return
    with pytest.raises(ProfileError, match=named):
        model_spec(config, "m")
