"""The engine in `vllm bench`'s modes: served runs pay the server's request overhead, offline runs do not."""

import pytest

from serving.engine.harness import fixed_concurrency, offline
from serving.profiles import load_profile

PROFILE = load_profile("llama-3.1-8b-h100")
SLOW = PROFILE.with_changes(efficiency={"request_overhead_s": 0.01})


def test_one_client_waits_the_overhead_before_each_request_is_scheduled():
    plain, slow = (fixed_concurrency(p, 128, 64, 1, requests=5, warmup=0) for p in (PROFILE, SLOW))
    assert slow.median_ttft_s == pytest.approx(plain.median_ttft_s + 0.01, abs=1e-9)
    assert slow.mean_itl_s == pytest.approx(plain.mean_itl_s, rel=1e-12)
    # each of the five requests waits once more before the engine sees it
    assert slow.elapsed_s == pytest.approx(plain.elapsed_s + 5 * 0.01, abs=1e-9)


def test_offline_runs_hand_requests_to_the_engine_directly():
    lengths = [(256, 32)] * 8
    assert offline(SLOW, lengths) == offline(PROFILE, lengths)


def test_an_unset_overhead_leaves_the_profile_as_it_serialized_before():
    assert "request_overhead_s" not in PROFILE.efficiency.model_dump()
    assert SLOW.efficiency.model_dump()["request_overhead_s"] == 0.01
    with pytest.raises(ValueError, match="request_overhead_s"):
        PROFILE.with_changes(efficiency={"request_overhead_s": -1.0})


def test_a_clients_turnaround_keeps_a_wave_together():
    """32 clients of 1,024-token prompts: the first wave is prefilled over four steps, so its answers end a few
    decode steps apart. Sent again at once, the first to end are prefilled between the others' last decodes and
    the waves spread out; sent after a turnaround longer than those steps, each wave arrives whole and waits for
    its own prefill, as real clients of vLLM do (docs/vllm-on-h200.md)."""
    at_once = fixed_concurrency(PROFILE, 1024, 256, 32, requests=128, warmup=32)
    later = fixed_concurrency(PROFILE, 1024, 256, 32, requests=128, warmup=32, turnaround_s=0.05)
    assert later.median_ttft_s > 2 * at_once.median_ttft_s
    assert later.mean_itl_s == pytest.approx(at_once.mean_itl_s, rel=0.1)
