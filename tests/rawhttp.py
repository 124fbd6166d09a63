"""Raw HTTP/1.1 over a socket, for the tests that play a careless or hostile client: bytes out exactly as written,
responses read back with h11 (interim ones kept apart), and how the server ended the connection."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import h11


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    interim: list[int] = field(default_factory=list)  # 1xx statuses that came before it


@dataclass
class Exchange:
    answers: list[Answer]
    closed: bool  # the server closed the connection (rather than the read timing out)
    seconds: float  # from the first byte sent to the close or the timeout
    raw: bytes = b""


def post(path: str, body: bytes, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}", "content-type: application/json", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse(raw: bytes, head_only: frozenset[int] = frozenset()) -> list[Answer]:
    """Every response in `raw`, in order; `head_only`: indexes of answers to HEAD requests (no body follows)."""
    answers, interim = [], []
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(raw)
    current = None
    while True:
        if conn.our_state is h11.IDLE or conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            if conn.our_state is h11.DONE:
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
            method = b"HEAD" if len(answers) in head_only else b"GET"
            conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
            conn.send(h11.EndOfMessage())
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            break
        if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            break
        if isinstance(event, h11.InformationalResponse):
            interim.append(event.status_code)
        elif isinstance(event, h11.Response):
            current = Answer(
                event.status_code, {k.decode().lower(): v.decode() for k, v in event.headers}, interim=interim
            )
            interim = []
        elif isinstance(event, h11.Data):
            current.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            answers.append(current)
    return answers


def exchange(
    port: int,
    *parts: bytes,
    pause_s: float = 0.0,
    read_timeout_s: float = 5.0,
    head_only: frozenset[int] = frozenset(),
    until_answers: int | None = None,
) -> Exchange:
    """Send `parts` (with `pause_s` between them), then read until the server closes, `read_timeout_s` passes with
    nothing new, or `until_answers` responses came."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start, raw, closed = time.monotonic(), b"", False
        for i, part in enumerate(parts):
            if i and pause_s:
                time.sleep(pause_s)
            try:
                sock.sendall(part)
            except OSError:  # the server closed on us mid-send
                closed = True
                break
        while not closed:
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            raw += data
            if until_answers is not None and len(parse(raw, head_only)) >= until_answers:
                break
        return Exchange(parse(raw, head_only), closed, time.monotonic() - start, raw)


def wait_closed(sock: socket.socket, timeout_s: float) -> float | None:
    """Seconds until the server closed `sock` (reading and dropping what it sends), or None if it stayed open."""
    sock.settimeout(0.05)
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if not sock.recv(1 << 16):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None
