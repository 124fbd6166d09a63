"""Writes a Hugging Face tokenizer folder that counts one token per whitespace-separated word, as the emulator does,
so guidellm (which needs a tokenizer to build prompts of a given length) runs offline against the same emulator.
Run with the Python of guidellm's environment: `python bench/word_tokenizer.py FOLDER`."""

from __future__ import annotations

import sys


def write_word_tokenizer(folder: str) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # every word is a token; words outside the tiny vocabulary decode as "[UNK]", still one word each (the unknown
    # token is deliberately not a special token, so decoding keeps it and a 128-token prompt stays 128 words)
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer).save_pretrained(folder)


if __name__ == "__main__":
    write_word_tokenizer(sys.argv[1])
