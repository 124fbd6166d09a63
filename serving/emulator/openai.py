"""OpenAI completions and chat requests: validation as vLLM does it, token counting, response encoding."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from serving.contracts.tokens import words
from serving.engine.profile import BLOCK_SIZE

# Synthetic output vocabulary: plain ASCII words, so they need no JSON escaping.
VOCABULARY = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "more",
    "can",
    "about",
    "said",
    "time",
    "only",
    "new",
    "some",
    "could",
    "these",
    "two",
    "may",
    "first",
    "then",
    "do",
    "any",
    "like",
    "other",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
)
_WORDS = tuple(w.encode() for w in VOCABULARY)
_SPACED = tuple(b" " + w for w in _WORDS)


class ApiError(Exception):
    """A request vLLM would refuse; status and message as its OpenAI server gives them."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


@dataclass
class GenerationRequest:
    chat: bool
    model: str
    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool
    ignore_eos: bool
    prefix_block_ids: tuple[int, ...]


def prefix_blocks(words: list[str]) -> tuple[int, ...]:
    """Content ids of the prompt's full 16-token blocks, so identical prefixes hit vLLM's prefix cache."""
    return tuple(hash(tuple(words[i : i + BLOCK_SIZE])) for i in range(0, len(words) - BLOCK_SIZE + 1, BLOCK_SIZE))


def _prompt_words(body: dict, chat: bool) -> tuple[list[str], int | None]:
    """The prompt as words (or, for token-id prompts, a count)."""
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' is required and must be a non-empty list", "messages")
        parts = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message:
                raise ApiError(400, f"messages[{i}] must be an object with a 'role'", "messages")
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if (
                        not isinstance(part, dict)
                        or part.get("type") != "text"
                        or not isinstance(part.get("text"), str)
                    ):
                        raise ApiError(
                            400, f"messages[{i}].content parts must be {{'type': 'text', 'text': str}}", "messages"
                        )
                    parts.append(part["text"])
            elif isinstance(content, str):
                parts.append(content)
            elif content is not None:
                raise ApiError(400, f"messages[{i}].content must be a string or a list of text parts", "messages")
        return words(" ".join(parts)), None
    if "prompt" not in body:
        raise ApiError(400, "'prompt' is required", "prompt")
    prompt = body["prompt"]
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return words(prompt), None
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return [], len(prompt)
    raise ApiError(400, "'prompt' must be a string, a list of token ids, or a list holding one of those", "prompt")


def _int_field(body: dict, name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ApiError(400, f"'{name}' must be an integer >= {minimum}, got {value!r}", name)
    return value


def parse_generation(
    raw: bytes, chat: bool, served_model: str, max_model_len: int
) -> tuple[GenerationRequest, list[str]]:
    """Validate a request body; raises ApiError with vLLM's status (400 bad input, 404 unknown model)."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"malformed JSON body: {err}") from None
    except RecursionError:
        raise ApiError(400, "malformed JSON body: nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required and must be a string", "model")
    if model != served_model:
        raise ApiError(404, f"The model `{model[:256]}` does not exist.", "model")
    words, token_ids = _prompt_words(body, chat)
    prompt_tokens = token_ids if token_ids is not None else len(words)
    if prompt_tokens < 1:
        raise ApiError(400, "the prompt must contain at least one token", "messages" if chat else "prompt")
    max_tokens = _int_field(body, "max_completion_tokens", 1) if chat else None
    if max_tokens is None:
        max_tokens = _int_field(body, "max_tokens", 1)
    n = _int_field(body, "n", 1)
    if n not in (None, 1):
        raise ApiError(400, "only n=1 is supported by this server", "n")
    if max_tokens is None:
        max_tokens = max_model_len - prompt_tokens
    if prompt_tokens + max_tokens > max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the {'messages' if chat else 'prompt'}, "
            f"{max_tokens} in the completion). Please reduce the length of the {'messages' if chat else 'prompt'} or completion.",
            "max_tokens" if max_tokens > 0 else ("messages" if chat else "prompt"),
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", "stream_options")
    if options and not stream:
        raise ApiError(400, "Stream options can only be defined when `stream=True`.", "stream_options")
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise ApiError(400, "'ignore_eos' must be a boolean", "ignore_eos")
    request = GenerationRequest(
        chat=chat,
        model=model,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        ignore_eos=ignore_eos,
        prefix_block_ids=prefix_blocks(words),
    )
    return request, words


def word(index: int, seed: int) -> bytes:
    """The index-th output token of a request: a word, spaced after the first."""
    w = (_SPACED if index else _WORDS)[(seed + index * 7) % len(_WORDS)]
    return w


class StreamEncoder:
    """Pre-built byte templates for one request's SSE chunks and final JSON (the per-token hot path)."""

    __slots__ = ("_post", "_post_final_fmt", "_pre", "chat", "created", "model", "request_id")

    def __init__(self, chat: bool, request_id: str, model: str):
        self.chat = chat
        self.request_id = request_id
        self.created = int(time.time())
        self.model = model
        head = json.dumps(
            {
                "id": request_id,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": self.created,
                "model": model,
            }
        )[:-1].encode()
        if chat:
            self._pre = b"data: " + head + b', "choices": [{"index": 0, "delta": {"content": "'
            self._post = b'"}, "logprobs": null, "finish_reason": null}]}\n\n'
            self._post_final_fmt = b'"}, "logprobs": null, "finish_reason": "%s"}]}\n\n'
        else:
            self._pre = b"data: " + head + b', "choices": [{"index": 0, "text": "'
            self._post = b'", "logprobs": null, "finish_reason": null, "stop_reason": null}]}\n\n'
            self._post_final_fmt = b'", "logprobs": null, "finish_reason": "%s", "stop_reason": null}]}\n\n'

    def role_chunk(self) -> bytes:
        doc = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
            ],
        }
        return b"data: " + json.dumps(doc).encode() + b"\n\n"

    def token_chunk(self, text: bytes, finish_reason: str | None = None) -> bytes:
        if finish_reason is None:
            return self._pre + text + self._post
        return self._pre + text + self._post_final_fmt % finish_reason.encode()

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        doc = {
            "id": self.request_id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
        }
        return b"data: " + json.dumps(doc).encode() + b"\n\n"

    def full_response(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> bytes:
        if self.chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None}
            kind = "text_completion"
        return json.dumps(
            {
                "id": self.request_id,
                "object": kind,
                "created": self.created,
                "model": self.model,
                "choices": [choice],
                "usage": usage(prompt_tokens, completion_tokens),
            }
        ).encode()


DONE = b"data: [DONE]\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }
