"""A model's architecture from its Hugging Face config.json: layers, attention (grouped-query included), dense or
mixture-of-experts MLPs and the weights' data type, counted into the figures the engine model reads (ModelSpec)."""

from __future__ import annotations

from serving.profiles.errors import ProfileError

# bytes per weight by quantization method (mxfp4: 4-bit values with one 8-bit scale per 32)
QUANTIZED_BYTES = {"fp8": 1.0, "fbgemm_fp8": 1.0, "compressed-tensors": 1.0, "mxfp4": 4.25 / 8}
DTYPE_BYTES = {"bfloat16": 2.0, "float16": 2.0, "float32": 4.0}
EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


def model_spec(config: dict, name: str, max_model_len: int | None = None) -> dict:
    """ModelSpec's fields for a decoder-only config (Llama, Qwen, Mistral, Mixtral, Qwen3-MoE, gpt-oss style)."""
    config = config.get("text_config", config)  # multi-modal wrappers keep the language model's config inside
    if "kv_lora_rank" in config:
        raise ProfileError(f"{name}: multi-head latent attention (kv_lora_rank: DeepSeek V2/V3) is not modelled")
    hidden, layers = _int(config, "hidden_size", name), _int(config, "num_hidden_layers", name)
    heads = _int(config, "num_attention_heads", name)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    attention = hidden * heads * head_dim * 2 + 2 * hidden * kv_heads * head_dim
    if config.get("attention_bias"):
        attention += heads * head_dim + 2 * kv_heads * head_dim + hidden
    mlp, experts, picked, expert_params = _mlp(config, hidden, layers, name)
    vocab = _int(config, "vocab_size", name)
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    parameters = layers * (attention + 2 * hidden) + mlp + embeddings + hidden
    longest = _int(config, "max_position_embeddings", name)
    return {
        "name": name,
        "parameters": float(parameters),
        "layers": layers,
        "hidden_size": hidden,
        "attention_heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "dtype_bytes": _weight_bytes(config, name),
        "kv_dtype_bytes": 2.0,
        "max_model_len": min(longest, max_model_len) if max_model_len else longest,
        "experts": experts,
        "experts_per_token": picked,
        "expert_parameters": float(expert_params),
        "source": f"{name} config.json, counted by serving/profiles/hf_config.py",
    }


def _mlp(config: dict, hidden: int, layers: int, name: str) -> tuple[int, int, int, int]:
    """(MLP parameters of all layers, routed experts, experts per token, parameters of all routed experts)."""
    dense = 3 * hidden * _int(config, "intermediate_size", name) if "intermediate_size" in config else 0
    experts = next((int(config[k]) for k in EXPERT_COUNT_KEYS if config.get(k)), 1)
    if experts == 1:
        if not dense:
            raise ProfileError(f"{name}: config.json has no intermediate_size")
        return layers * dense, 1, 1, 0
    picked = _int(config, "num_experts_per_tok", name)
    expert = 3 * hidden * int(config.get("moe_intermediate_size") or config["intermediate_size"])
    shared = 3 * hidden * int(config.get("shared_expert_intermediate_size") or 0)
    shared += int(config.get("n_shared_experts") or 0) * expert
    moe_layers = sum(_is_moe_layer(config, i) for i in range(layers))
    per_moe_layer = experts * expert + hidden * experts + shared
    return moe_layers * per_moe_layer + (layers - moe_layers) * dense, experts, picked, moe_layers * experts * expert


def _is_moe_layer(config: dict, index: int) -> bool:
    """Qwen's decoder_sparse_step and mlp_only_layers, DeepSeek's first_k_dense_replace; else every layer."""
    if index in (config.get("mlp_only_layers") or []) or index < int(config.get("first_k_dense_replace") or 0):
        return False
    step = int(config.get("decoder_sparse_step") or 1)
    return (index + 1) % step == 0


def _weight_bytes(config: dict, name: str) -> float:
    method = (config.get("quantization_config") or {}).get("quant_method")
    if method:
        if method not in QUANTIZED_BYTES:
            raise ProfileError(f"{name}: quantization {method!r} is not modelled; known: {', '.join(QUANTIZED_BYTES)}")
        return QUANTIZED_BYTES[method]
    dtype = config.get("torch_dtype") or config.get("dtype") or "bfloat16"
    if dtype not in DTYPE_BYTES:
        raise ProfileError(f"{name}: torch_dtype {dtype!r} is not one of {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def _int(config: dict, key: str, name: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ProfileError(f"{name}: config.json needs a positive whole {key}, got {value!r}")
    return value
