"""Request bodies for OpenAI-compatible completions and chat, with prompts built to a token length.

Against the emulator one word is one token (DESIGN.md), so the length is exact. Against a real server the
words are common English words that most LLM tokenizers encode as one token each, so it is close; the
server's `usage.prompt_tokens` is recorded next to the requested length.
"""

from __future__ import annotations

from dataclasses import dataclass

_WORDS = (
    "time",
    "people",
    "water",
    "world",
    "house",
    "light",
    "story",
    "music",
    "river",
    "stone",
    "green",
    "paper",
    "night",
    "table",
    "friend",
    "garden",
    "window",
    "market",
    "summer",
    "winter",
    "morning",
    "school",
    "family",
    "number",
    "city",
    "road",
    "field",
    "paint",
    "voice",
    "dream",
    "horse",
    "bread",
)
APIS = ("completions", "chat")


def prompt_text(tokens: int, request_index: int, shared_prefix: int = 0) -> str:
    """`tokens` words. The first `shared_prefix` words are the same for every request (a system prompt that
    hits the prefix cache); the rest start with the request's index so that no two prompts share more."""
    if tokens < 1:
        raise ValueError(f"prompt length must be at least 1 token, got {tokens}")
    shared = min(shared_prefix, tokens)
    words = [_WORDS[i % len(_WORDS)] for i in range(shared)]
    unique = tokens - shared
    if unique:
        words.append(f"r{request_index}")
        step = request_index % 7 + 1
        words.extend(_WORDS[(request_index + i * step) % len(_WORDS)] for i in range(unique - 1))
    return " ".join(words)


@dataclass(frozen=True)
class RequestSpec:
    """One request of a campaign: lengths from the shape or the trace."""

    index: int
    prompt_tokens: int
    output_tokens: int


def build_body(
    api: str,
    model: str,
    spec: RequestSpec,
    *,
    stream: bool = True,
    ignore_eos: bool = True,
    shared_prefix: int = 0,
    temperature: float = 0.0,
) -> tuple[str, dict]:
    """(path, JSON body). `max_tokens` and `ignore_eos` make the server produce the trace's output length."""
    if api not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)}, got {api!r}")
    text = prompt_text(spec.prompt_tokens, spec.index, shared_prefix)
    body: dict = {"model": model, "max_tokens": spec.output_tokens, "temperature": temperature, "stream": stream}
    if ignore_eos:
        body["ignore_eos"] = True
    if stream:
        body["stream_options"] = {"include_usage": True}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": text}]
        return "/v1/chat/completions", body
    body["prompt"] = text
    return "/v1/completions", body
