"""The campaign's HTTP client notes when a request went onto its connection, not when Locust began building it."""

from __future__ import annotations

import time

import gevent
import pytest

from loadgen.timed_client import SendTimedPool
from tests.helpers import LoopbackHttpServer, QuietHandler


class _Ok(QuietHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.reply(200, b"ok", "text/plain")


@pytest.fixture
def server():
    http = LoopbackHttpServer(_Ok).start()
    yield http.url
    http.close()


def test_send_time_is_after_the_clients_own_work(server, monkeypatch):
    """The client's own work before the request goes onto the connection (made 50 ms slow here) is not counted as
    the server's; nothing is left behind per greenlet."""
    from geventhttpclient.connectionpool import ConnectionPool

    take = ConnectionPool.get_socket

    def slow_get_socket(pool):
        gevent.sleep(0.05)
        return take(pool)

    monkeypatch.setattr(ConnectionPool, "get_socket", slow_get_socket)
    client = SendTimedPool(concurrency=4).get_client(server)
    began = time.perf_counter()
    response = client.request("POST", "/", body=b"{}", headers={"Content-Type": "application/json"})
    assert response.read() == b"ok"
    assert began + 0.05 <= response.headroom_sent_s <= time.perf_counter()
    assert not client._connected_at


def test_a_refused_connection_leaves_nothing_behind():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = SendTimedPool(concurrency=1, connection_timeout=2).get_client(f"http://127.0.0.1:{port}")
    with pytest.raises(OSError):
        client.request("POST", "/", body=b"{}")
    assert not client._connected_at
