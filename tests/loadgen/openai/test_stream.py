"""Streamed-response timing: vllm bench serve's TTFT, ITL and TPOT; usage or counted tokens; broken streams fail."""

import json

import pytest

from loadgen.openai.stream import StreamTimer, measure_full


def sse(event) -> bytes:
    return b"data: " + (event if isinstance(event, bytes) else json.dumps(event).encode()) + b"\n\n"


def chunk(text, chat=False):
    choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
    return {"choices": [choice]}


def test_ttft_itl_tpot_from_choice_messages_and_usage():
    timer = StreamTimer(sent_at=10.0)
    timer.feed(sse({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}), 10.2)  # role-only: counts for TTFT
    timer.feed(sse(chunk("a", chat=True)), 10.25)
    timer.feed(sse(chunk("b", chat=True)) + sse(chunk("c", chat=True)), 10.30)
    timer.feed(sse({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}), 10.31)
    timer.feed(sse(b"[DONE]"), 10.31)
    m = timer.finish(10.32)
    assert m.ok and m.ttft_s == pytest.approx(0.2) and m.e2e_s == pytest.approx(0.32)
    assert m.itl_s == pytest.approx([0.05, 0.05, 0.0])
    assert (m.prompt_tokens, m.output_tokens, m.usage_reported) == (7, 3, True)
    assert m.tpot_s == pytest.approx((0.32 - 0.2) / 2)


def test_messages_split_across_chunks_and_counted_tokens_without_usage():
    body = b"".join(sse(chunk(w)) for w in ["x", "y", "z"]) + sse(b"[DONE]")
    timer = StreamTimer(sent_at=0.0)
    for i in range(0, len(body), 7):  # arbitrary chunk boundaries
        timer.feed(body[i : i + 7], 1.0 + i / 1000)
    m = timer.finish(2.0)
    assert m.ok and m.output_tokens == 3 and not m.usage_reported and len(m.itl_s) == 2


@pytest.mark.parametrize(
    "body, error",
    [
        (sse(chunk("a")), "before data: [DONE]"),
        (sse(b"[DONE]"), "no choices"),
        (sse(b"{not json"), "malformed SSE"),
        (sse({"error": {"message": "boom", "code": 500}}), "boom"),
    ],
)
def test_broken_streams_fail_with_the_reason(body, error):
    timer = StreamTimer(0.0)
    timer.feed(body, 0.1)
    m = timer.finish(0.2)
    assert not m.ok and error in m.error


def test_non_streamed_responses():
    ok = json.dumps({"choices": [{"text": "a b c"}], "usage": {"prompt_tokens": 4, "completion_tokens": 3}}).encode()
    m = measure_full(ok, 200, 1.0, 1.5)
    assert m.ok and m.output_tokens == 3 and m.ttft_s == pytest.approx(0.5)
    bad = measure_full(json.dumps({"error": {"message": "too long"}}).encode(), 400, 1.0, 1.1)
    assert not bad.ok and bad.error == "HTTP 400: too long"
