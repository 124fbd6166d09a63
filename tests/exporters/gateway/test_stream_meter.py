"""What the gateway reads from a stream as it passes: events, TTFT and ITL stamps, usage."""

from exporters.gateway.stream_meter import TOKEN_EVENT, StreamMeter, count_new, usage_tokens


class Gaps:
    def __init__(self):
        self.seen = []

    def observe(self, value):
        self.seen.append(value)


def test_event_counting_across_chunk_boundaries():
    stream = b'data: {"a": 1, "finish_reason": null}\n\n' * 7
    for cut in range(1, len(stream)):
        first, second = stream[:cut], stream[cut:]
        assert count_new(b"", first, TOKEN_EVENT) + count_new(first, second, TOKEN_EVENT) == 7


def test_first_event_and_gaps_between_reads():
    event = b'data: {"choices": [{"text": "a", "finish_reason": null}]}\n\n'
    gaps = Gaps()
    meter = StreamMeter(gaps)
    meter.feed(event, 10.0)
    meter.feed(event * 2, 10.5)  # two in one read: one gap, then none
    meter.feed(b'data: {"choices": [], "usage": {}}\n\n', 11.0)  # usage-only: no token, no gap
    assert meter.first == 10.0 and meter.events == 3
    assert gaps.seen == [0.5, 0.0]


def test_usage_is_read_from_the_last_usage_object():
    body = (
        b'{"usage": {"prompt_tokens": 3, "total_tokens": 5, "completion_tokens": 2}} '
        b'{"usage":{"prompt_tokens":7,"total_tokens":16,"completion_tokens":9}}'
    )
    assert usage_tokens(body) == (7, 9)
    assert usage_tokens(b'{"choices": []}') is None
