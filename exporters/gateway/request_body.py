"""A generation request's body: read within the listener's limits (size, time, `Expect`), then checked (JSON, model)
before any backend is touched. Errors carry the status and the message the client gets."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from serving.common.http.limits import ListenerLimits

MAX_MODEL_NAME = 256


class BodyError(ValueError):
    """What is wrong with a request's body; `close`: the body was not read, so the connection must end."""

    def __init__(self, status: int, message: str, param: str | None = None, close: bool = False):
        super().__init__(message)
        self.status, self.param, self.close = status, param, close


async def read_body(request: web.BaseRequest, limits: ListenerLimits) -> bytes:
    """The whole body, at most `max_body_bytes`, within `body_timeout_s`; answers `Expect: 100-continue` itself (the
    body is needed here before any backend is chosen, so the expectation is not forwarded, RFC 9110 10.1.1)."""
    limit = request.content_length
    if limit is not None and limit > limits.max_body_bytes:
        raise BodyError(413, f"request body exceeds {limits.max_body_bytes} bytes", close=True)
    expect = request.headers.get("expect")
    if expect is not None:
        if expect.strip().lower() != "100-continue":
            raise BodyError(417, f"unsupported expectation {expect[:64]!r}: only 100-continue", close=True)
        if request.content_length != 0:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    parts, size = [], 0
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise BodyError(413, f"request body exceeds {limits.max_body_bytes} bytes", close=True)
                parts.append(chunk)
    except TimeoutError:
        raise BodyError(
            408, f"the request body did not arrive within {limits.body_timeout_s:g} s", close=True
        ) from None
    except web.RequestPayloadError as err:  # malformed chunked encoding, a body cut short
        raise BodyError(400, f"malformed request body: {err}", close=True) from None
    return b"".join(parts)


def parse_generation(body: bytes) -> tuple[str, int, str]:
    """(model, prompt word count, prompt text) of a completion or chat request; raises BodyError."""
    if not body:
        raise BodyError(400, "the request has no body: send a JSON object with model and prompt (or messages)")
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        raise BodyError(400, "the request body is not UTF-8 text") from None
    except RecursionError:
        raise BodyError(400, "the request body is not valid JSON: nested too deeply") from None
    except ValueError as err:
        raise BodyError(400, f"the request body is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise BodyError(400, f"the request body must be a JSON object, got {type(doc).__name__}")
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise BodyError(400, "the request names no model: the JSON body needs a string field model", "model")
    if len(model) > MAX_MODEL_NAME:
        raise BodyError(400, f"the model name is {len(model)} characters long; at most {MAX_MODEL_NAME}", "model")
    text = _prompt_text(doc)
    return model, len(text.split()), text


def _prompt_text(doc: dict) -> str:
    """A completion's prompt, or a chat's message contents joined (text parts of multi-part contents too)."""
    prompt = doc.get("prompt")
    if isinstance(prompt, str):
        return prompt
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return ""
    texts = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return " ".join(texts)
