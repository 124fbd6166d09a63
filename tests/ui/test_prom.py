"""Prometheus answers into frames, and sources that fail named in one error type (a real HTTP server on loopback)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ui.prom import SourceUnavailable, by_label, instant, matrix_frame, vector_frame


def test_vector_and_matrix_frames_keep_labels_and_values():
    v = vector_frame([{"metric": {"model_name": "a"}, "value": [10.0, "1.5"]}, {"metric": {}, "value": [10.0, "NaN"]}])
    assert list(v.columns) == ["model_name", "time", "value"] and v["value"].iloc[0] == 1.5
    assert by_label(v, "model_name") == {"a": 1.5}  # NaN dropped, a missing label is ''
    m = matrix_frame([{"metric": {"target": "t"}, "values": [[1, "1"], [2, "3"]]}])
    assert list(m["value"]) == [1.0, 3.0] and set(m["target"]) == {"t"}
    assert vector_frame([]).empty and matrix_frame([]).empty


class Answers(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = (
            (400, {"status": "error", "error": "parse error at char 3"})
            if "bad" in self.path
            else (200, {"status": "success", "data": {"resultType": "vector", "result": []}})
        )
        if "html" in self.path:
            status, text = 502, b"<html>bad gateway</html>"
        else:
            text = json.dumps(body).encode()
        self.send_response(status)
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_refused_queries_and_non_json_answers_are_named(server):
    assert instant(server, "up", 1.0).frame.empty
    with pytest.raises(SourceUnavailable, match="refused 'bad query': parse error at char 3"):
        instant(server, "bad query", 1.0)
    with pytest.raises(SourceUnavailable, match="answered 502 without JSON"):
        instant(server, "html", 1.0)


def test_nothing_listening_is_named():
    with pytest.raises(SourceUnavailable, match="Prometheus at http://127.0.0.1:9 did not answer"):
        instant("http://127.0.0.1:9", "up", 1.0)
