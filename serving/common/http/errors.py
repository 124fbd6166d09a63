"""OpenAI-style error documents, as vLLM's server returns them: shared by the emulator and the gateway."""

from __future__ import annotations

import json

_ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "BadRequestError",
    408: "BadRequestError",
    413: "BadRequestError",
    417: "BadRequestError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
}


def error_body(status: int, message: str, param: str | None = None, err_type: str | None = None) -> bytes:
    """`{"error": {message, type, param, code}}` for an HTTP status."""
    err_type = err_type or _ERROR_TYPES.get(status, "BadRequestError" if status < 500 else "InternalServerError")
    return json.dumps({"error": {"message": message, "type": err_type, "param": param, "code": status}}).encode()
