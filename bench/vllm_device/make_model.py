"""A Llama-3.1-8B model folder for `--load-format dummy` (its published config.json facts, no weights) with a
WordLevel tokenizer in which one whitespace-separated word is one token, as in the emulator, so prompts have exact
lengths. Ids 0..128255 are "w<id>" but for the BOS (128000) and EOS (128001) tokens; unknown words read as w0; no
BOS is added, so "w17 w523" encodes to exactly [17, 523]. Sampling defaults are Llama-3.1-8B-Instruct's.
usage: python make_model.py OUTDIR   (needs `tokenizers`)"""

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
V = 128256
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
vocab = {f"w{i}": i for i in range(V)}
del vocab["w128000"], vocab["w128001"]
vocab[BOS] = 128000
vocab[EOS] = 128001
assert len(vocab) == V and sorted(vocab.values()) == list(range(V))
tok = Tokenizer(WordLevel(vocab=vocab, unk_token="w0"))
tok.pre_tokenizer = WhitespaceSplit()
tok.add_special_tokens(
    [AddedToken(BOS, special=True, normalized=False), AddedToken(EOS, special=True, normalized=False)]
)
tok.save(os.path.join(out, "tokenizer.json"))

config = {
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
write_json(config, "config.json")
# Same sampling defaults as meta-llama/Llama-3.1-8B-Instruct's generation_config
write_json(
    {"bos_token_id": 128000, "eos_token_id": 128001, "do_sample": True, "temperature": 0.6, "top_p": 0.9},
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
