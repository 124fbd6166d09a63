"""Request bodies and prompts of an exact word count."""

import pytest

from loadgen.openai.request import RequestSpec, build_body, prompt_text


@pytest.mark.parametrize("tokens", [1, 2, 16, 999])
def test_prompt_has_exactly_the_asked_words(tokens):
    assert len(prompt_text(tokens, 5).split()) == tokens
    assert len(prompt_text(tokens, 5, shared_prefix=10).split()) == tokens


def test_prompts_differ_after_the_shared_prefix():
    a, b = prompt_text(40, 1, shared_prefix=16).split(), prompt_text(40, 2, shared_prefix=16).split()
    assert a[:16] == b[:16] and a[16] != b[16]


def test_bodies():
    path, body = build_body("chat", "m", RequestSpec(3, 12, 34))
    assert path == "/v1/chat/completions" and body["max_tokens"] == 34 and body["ignore_eos"] is True
    assert body["stream_options"] == {"include_usage": True} and len(body["messages"][0]["content"].split()) == 12
    path, body = build_body("completions", "m", RequestSpec(3, 5, 1), stream=False)
    assert path == "/v1/completions" and "stream_options" not in body and len(body["prompt"].split()) == 5
    with pytest.raises(ValueError, match="api must be one of"):
        build_body("embeddings", "m", RequestSpec(0, 1, 1))
