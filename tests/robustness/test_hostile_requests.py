"""The robustness suite: every request of the corpus, and generated ones, against the gateway (in front of an
emulator) and the emulator itself. Each gets an answer below 500 or a clean close; afterwards no slot is held, the
server still serves, and a second pass over the corpus does not grow memory."""

from __future__ import annotations

import json
import resource
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import rawhttp
from tests.helpers import EmulatorServer, GatewayServer, metric_value
from tests.robustness.corpus import BODIES, KEPT_OPEN, MODEL, PROTOCOL

LIMITS = {"header_timeout_s": 1.0, "body_timeout_s": 1.0, "idle_timeout_s": 1.0}
HEAD_CASES = {"head requests": frozenset({0, 1})}


@pytest.fixture(scope="module")
def servers():
    with EmulatorServer(limits=LIMITS) as emulator, GatewayServer([f"127.0.0.1:{emulator.port}"], limits=LIMITS) as gw:
        yield {"gateway": gw, "emulator": emulator}


@pytest.fixture(params=["gateway", "emulator"])
def target(request, servers):
    return servers[request.param]


def held(target) -> tuple[float, ...]:
    """What the target holds: the gateway's slots and queue, or the emulator's requests in flight."""
    if isinstance(target, GatewayServer):
        text = httpx.get(f"{target.url}/metrics").text
        return (
            metric_value(text, "headroom_gateway_backend_in_flight_requests"),
            metric_value(text, "headroom_gateway_queue_depth"),
        )
    return (float(httpx.get(f"{target.url}/admin/state").json()["in_flight"]),)


def assert_released_and_serving(target) -> None:
    deadline = time.monotonic() + 10
    while any(held(target)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(held(target)), held(target)
    ok = httpx.post(f"{target.url}/v1/completions", json={"model": MODEL, "prompt": "a b", "max_tokens": 2}, timeout=10)
    assert ok.status_code == 200, ok.text
    assert httpx.get(f"{target.url}/health").status_code == 200


def check_exchange(ex: rawhttp.Exchange, case: str) -> None:
    """Every answer below 500; no answer at all only when the server closed the connection."""
    statuses = [a.status for a in ex.answers]
    assert all(s < 500 for s in statuses), (case, statuses, ex.raw[:300])
    assert statuses or ex.closed, (case, "no answer and no close", ex.raw[:300])


def run_corpus(target) -> None:
    for name, route, body in BODIES:
        ex = rawhttp.exchange(target.port, rawhttp.post(route, body, {"connection": "close"}), read_timeout_s=10)
        check_exchange(ex, name)
    for name, parts in PROTOCOL:
        ex = rawhttp.exchange(
            target.port,
            *parts,
            pause_s=0.05,
            read_timeout_s=10,
            head_only=HEAD_CASES.get(name, frozenset()),
            until_answers=KEPT_OPEN.get(name),
        )
        check_exchange(ex, name)


def test_the_corpus_gets_clean_answers_holds_nothing_and_does_not_grow_memory(target):
    assert len(BODIES) >= 41 and len(PROTOCOL) >= 25
    run_corpus(target)
    assert_released_and_serving(target)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run_corpus(target)
    assert_released_and_serving(target)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    assert grown_mib < 64, f"peak memory grew {grown_mib:.0f} MiB over a second pass of the corpus"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([MODEL, "", "x"]) | JSON_VALUES,
        "prompt": JSON_VALUES,
        "messages": JSON_VALUES,
        "max_tokens": st.integers(-5, 5) | JSON_VALUES,
        "stream": JSON_VALUES,
        "stream_options": JSON_VALUES,
        "n": JSON_VALUES,
    },
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(fields=FIELDS, chat=st.booleans())
def test_generated_json_bodies(target, fields, chat):
    if "max_tokens" not in fields or not isinstance(fields["max_tokens"], int) or fields["max_tokens"] > 5:
        fields["max_tokens"] = 2  # a valid request stays short
    route = "/v1/chat/completions" if chat else "/v1/completions"
    body = json.dumps(fields, allow_nan=True).encode()
    ex = rawhttp.exchange(target.port, rawhttp.post(route, body, {"connection": "close"}), read_timeout_s=10)
    check_exchange(ex, body[:200])


VALID = rawhttp.post(
    "/v1/completions", json.dumps({"model": MODEL, "prompt": "a", "max_tokens": 1}).encode(), {"connection": "close"}
)


@SETTINGS
@given(cuts=st.lists(st.tuples(st.integers(0, len(VALID)), st.binary(max_size=8)), min_size=1, max_size=4))
def test_generated_mutations_of_a_valid_request(target, cuts):
    mutated = VALID
    for at, insert in cuts:
        mutated = mutated[:at] + insert + mutated[at + 1 :]
    ex = rawhttp.exchange(target.port, mutated, read_timeout_s=10)
    check_exchange(ex, mutated[:200])


@SETTINGS
@given(name=st.binary(min_size=1, max_size=40), value=st.binary(max_size=200))
def test_generated_header_fields(target, name, value):
    request = b"GET /health HTTP/1.1\r\nhost: x\r\n" + name + b": " + value + b"\r\nconnection: close\r\n\r\n"
    ex = rawhttp.exchange(target.port, request, read_timeout_s=10)
    check_exchange(ex, request[:200])


def test_nothing_is_held_after_the_generated_requests(target):
    assert_released_and_serving(target)
