"""Requests to the backends on aiohttp's client: pooled keep-alive connections, connect and first-byte deadlines.

aiohttp parses the responses, skips interim ones (`100 Continue`, which uvicorn, vLLM's server, sends) and hands a
connection back to the pool only after a complete response. Bodies are passed through as they are: no
decompression, no default headers added on the client's behalf.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

# hop-by-hop headers (RFC 9110 7.6.1) and those the gateway sets itself; never forwarded in either direction
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "content-length",
        "host",
        "expect",
    }
)
_NOT_ADDED = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class UpstreamError(ConnectionError):
    """The backend could not be reached or gave no response head in time."""


class StaleConnection(UpstreamError):
    """A reused keep-alive connection was closed by the backend before it answered: resend on a fresh one."""


def forwarded_headers(headers, drop: frozenset[str] = frozenset({"authorization"})) -> list[tuple[str, str]]:
    """End-to-end headers of a message: less hop-by-hop ones, those its Connection header names, and `drop`."""
    named = {t.strip().lower() for v in headers.getall("connection", ()) for t in v.split(",")}
    return [
        (k, v)
        for k, v in headers.items()
        if (low := k.lower()) not in HOP_BY_HOP and low not in named and low not in drop
    ]


class Upstream:
    """One pooled session for every backend, and a second that never reuses a connection (for resends)."""

    def __init__(self, connect_timeout_s: float, first_byte_timeout_s: float):
        self.first_byte_timeout_s = first_byte_timeout_s
        # no pool limit: admission control already bounds the requests per backend
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        self._pooled = self._session(aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0), timeout)
        self._fresh = self._session(aiohttp.TCPConnector(limit=0, force_close=True), timeout)

    @staticmethod
    def _session(connector: aiohttp.TCPConnector, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=_NOT_ADDED,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    @asynccontextmanager
    async def request(
        self, address: str, method: str, path_qs: str, headers: list[tuple[str, str]], body: bytes, fresh: bool = False
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The backend's response once its head arrived; raises UpstreamError (StaleConnection on a dropped idle
        connection) when nothing came. Leaving the block early closes the connection, so the backend stops."""
        session = self._fresh if fresh else self._pooled
        try:
            async with asyncio.timeout(self.first_byte_timeout_s):
                response = await session.request(
                    method,
                    f"http://{address}{path_qs}",
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    compress=None,
                    chunked=None,
                )
        except TimeoutError:
            raise UpstreamError(f"{address}: no response within {self.first_byte_timeout_s:g} s") from None
        except aiohttp.ServerDisconnectedError:
            if fresh:
                raise UpstreamError(f"{address}: closed the connection before answering") from None
            raise StaleConnection(address) from None
        except aiohttp.ClientConnectorError as err:
            raise UpstreamError(f"{address}: {err.os_error.strerror or err.os_error}") from None
        except aiohttp.ClientOSError:  # a reset on a reused connection: as a close
            if fresh:
                raise UpstreamError(f"{address}: reset the connection before answering") from None
            raise StaleConnection(address) from None
        except aiohttp.ClientError as err:
            raise UpstreamError(f"{address}: {err}") from None
        try:
            yield response
        finally:
            response.close() if not response.content.is_eof() else response.release()

    async def close(self) -> None:
        await self._pooled.close()
        await self._fresh.close()
