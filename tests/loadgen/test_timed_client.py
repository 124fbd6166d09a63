"""The campaign's HTTP client notes when a request went onto its connection, not when Locust began building it."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gevent
import pytest

from loadgen.timed_client import SendTimedPool


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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
