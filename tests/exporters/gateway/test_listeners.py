"""The gateway's listeners: TLS from files (re-read when they change) and /metrics on a port of its own."""

import socket
import ssl
import time

import httpx
import pytest
import trustme

from tests.helpers import GatewayServer


def served_certificate(port: int, ca: trustme.CA) -> bytes:
    """The DER certificate a fresh TLS handshake on `port` presents."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.getpeercert(binary_form=True)


def test_tls_listener_serves_and_reloads_a_renewed_certificate(tmp_path):
    ca = trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first = ca.issue_cert("127.0.0.1")
    first.cert_chain_pems[0].write_to_path(str(cert))
    first.private_key_pem.write_to_path(str(key))
    tls = {"cert_file": str(cert), "key_file": str(key), "reload_interval_s": 0.1}
    with GatewayServer([], tls=tls) as gw:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        assert httpx.get(f"https://127.0.0.1:{gw.port}/health", verify=context).status_code == 200
        before = served_certificate(gw.port, ca)
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{gw.port}/health", timeout=2)
        second = ca.issue_cert("127.0.0.1")
        key.write_bytes(second.private_key_pem.bytes())
        cert.write_bytes(second.cert_chain_pems[0].bytes())
        deadline = time.monotonic() + 5
        while served_certificate(gw.port, ca) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert served_certificate(gw.port, ca) != before
        cert.write_text("not a certificate")  # a rotation gone wrong keeps the last good pair
        time.sleep(0.5)
        assert httpx.get(f"https://127.0.0.1:{gw.port}/health", verify=context).status_code == 200


def test_a_missing_certificate_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        with GatewayServer([], tls={"cert_file": str(tmp_path / "absent.pem"), "key_file": str(tmp_path / "k.pem")}):
            pass


def test_metrics_on_their_own_port(tmp_path):
    with GatewayServer([], metrics_port=0) as gw:
        assert gw.service.metrics_port not in (None, 0, gw.port)
        metrics = httpx.get(f"http://127.0.0.1:{gw.service.metrics_port}/metrics")
        assert metrics.status_code == 200 and "headroom_gateway_ready_backends" in metrics.text
        assert httpx.get(f"{gw.url}/metrics").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{gw.service.metrics_port}/v1/models").status_code == 404
