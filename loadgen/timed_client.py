"""Locust's HTTP client (geventhttpclient) timing each request from when it went onto its connection."""

from __future__ import annotations

import time

import gevent
from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.url import URL


class SendTimedClient(HTTPClient):
    """geventhttpclient's client (under Locust's session) noting on each response when its request went onto the
    connection: after the session's and the client's own work (URL, cookies, headers, the pooled connection's
    liveness check: about half a millisecond of Python), so that TTFT and end-to-end latency time the server and the
    wire rather than the load generator. Opening a new connection comes before it too (keep-alive connections are
    reused, so only a campaign's first requests on each one open it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connected_at: dict = {}  # greenlet -> perf_counter when its connection was handed over
        pool = self._connection_pool
        take = pool.get_socket

        def timed_get_socket():
            sock = take()
            self._connected_at[gevent.getcurrent()] = time.perf_counter()
            return sock

        pool.get_socket = timed_get_socket

    def request(self, method, request_uri, body=b"", headers=None):
        started = time.perf_counter()
        try:
            response = super().request(method, request_uri, body=body, headers=headers)
        finally:
            sent = self._connected_at.pop(gevent.getcurrent(), started)
        response.headroom_sent_s = sent
        return response


class SendTimedPool(HTTPClientPool):
    """HTTPClientPool handing out SendTimedClient, built with the arguments Locust gave the pool it replaces."""

    def get_client(self, url):
        url = url if isinstance(url, URL) else URL(url)
        key = url.host, url.port
        if key not in self.clients:
            self.clients[key] = SendTimedClient.from_url(url, **self.client_args)
        return self.clients[key]
