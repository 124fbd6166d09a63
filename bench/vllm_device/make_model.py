"""A Llama-3.1-8B model folder for `--load-format dummy` (its published config.json facts, no weights) with a
WordLevel tokenizer in which one whitespace-separated word is one token, as in the emulator, so prompts have exact
lengths. Ids 0..128255 are "w<id>" but for the BOS (128000) and EOS (128001) tokens; unknown words read as w0; no
BOS is added, so "w17 w523" encodes to exactly [17, 523]. Sampling defaults are Llama-3.1-8B-Instruct's.
With ARCH qwen3-30b-a3b: Qwen3-30B-A3B's published config (128 experts, 8 per token) and vocabulary size, its
BOS/EOS ids 151643/151645, the same one-word-one-token rule.
usage: python make_model.py OUTDIR [llama-3.1-8b|qwen3-30b-a3b]   (needs `tokenizers`)"""

import json
import os
import sys

from tokenizers import AddedToken, Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit

out = sys.argv[1]


def write_json(value, name: str) -> None:
    with open(os.path.join(out, name), "w") as f:
        json.dump(value, f, indent=2)


os.makedirs(out, exist_ok=True)
ARCH = sys.argv[2] if len(sys.argv) > 2 else "llama-3.1-8b"
if ARCH == "qwen3-30b-a3b":
    V, BOS_ID, EOS_ID, BOS, EOS = 151936, 151643, 151645, "<|endoftext|>", "<|im_end|>"
else:
    V, BOS_ID, EOS_ID, BOS, EOS = 128256, 128000, 128001, "<|begin_of_text|>", "<|end_of_text|>"
vocab = {f"w{i}": i for i in range(V)}
del vocab[f"w{BOS_ID}"], vocab[f"w{EOS_ID}"]
vocab[BOS] = BOS_ID
vocab[EOS] = EOS_ID
assert len(vocab) == V and sorted(vocab.values()) == list(range(V))
tok = Tokenizer(WordLevel(vocab=vocab, unk_token="w0"))
tok.pre_tokenizer = WhitespaceSplit()
tok.add_special_tokens(
    [AddedToken(BOS, special=True, normalized=False), AddedToken(EOS, special=True, normalized=False)]
)
tok.save(os.path.join(out, "tokenizer.json"))

QWEN3_30B_A3B = {  # Qwen/Qwen3-30B-A3B's config.json
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": BOS_ID,
    "eos_token_id": EOS_ID,
    "decoder_sparse_step": 1,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 6144,
    "max_position_embeddings": 40960,
    "max_window_layers": 48,
    "mlp_only_layers": [],
    "moe_intermediate_size": 768,
    "norm_topk_prob": True,
    "num_attention_heads": 32,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 48,
    "num_key_value_heads": 4,
    "output_router_logits": False,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "router_aux_loss_coef": 0.001,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": V,
}
LLAMA_3_1_8B = {
    "architectures": ["LlamaForCausalLM"],
    "transformers_version": "4.43.0.dev0",
    "model_type": "llama",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": V,
}
config = QWEN3_30B_A3B if ARCH == "qwen3-30b-a3b" else LLAMA_3_1_8B
write_json(config, "config.json")
# Same sampling defaults as meta-llama/Llama-3.1-8B-Instruct's generation_config
write_json(
    {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "do_sample": True, "temperature": 0.6, "top_p": 0.9},
    "generation_config.json",
)
tc = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": BOS,
    "eos_token": EOS,
    "add_bos_token": False,
    "add_eos_token": False,
    "clean_up_tokenization_spaces": False,
    "model_max_length": 131072,
    "chat_template": "{% for message in messages %}{% if not loop.first %} {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}",
}
write_json(tc, "tokenizer_config.json")
write_json({"bos_token": BOS, "eos_token": EOS}, "special_tokens_map.json")
print("model dir written:", out, os.listdir(out))
