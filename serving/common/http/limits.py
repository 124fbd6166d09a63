"""What one client may send a Headroom listener and how long it may take; the TLS files of a listener (pure config).

Shared by the gateway's aiohttp listener and the emulator's own server, so both refuse the same things; every
default is listed with its reason in docs/gateway.md.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from serving.common.strict import Strict


class ListenerLimits(Strict):
    """What one client may send and how long it may take (defaults as nginx's order of magnitude)."""

    max_url_bytes: int = Field(8190, ge=256)  # the request line: method, target and version
    max_header_bytes: int = Field(8190, ge=256)  # one header field, name and value
    max_headers: int = Field(100, ge=8)
    max_body_bytes: int = Field(8 << 20, ge=1024)
    header_timeout_s: float = Field(
        10.0, gt=0
    )  # from a new connection, or a later request's first byte, to its headers
    body_timeout_s: float = Field(30.0, gt=0)  # from the headers to the body's last byte
    idle_timeout_s: float = Field(75.0, gt=0)  # a keep-alive connection with no new request after an answer
    max_connections: int = Field(4096, ge=1)  # open client connections; beyond, new ones are closed at once


class TlsFiles(Strict):
    """A PEM certificate chain and its key; re-read when either file changes."""

    cert_file: Path
    key_file: Path
    reload_interval_s: float = Field(10.0, gt=0)
