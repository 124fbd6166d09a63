"""The engine in `vllm bench`'s modes: served runs pay the server's request overhead, offline runs do not."""

import itertools

import pytest

from serving.engine import harness
from serving.engine.harness import fixed_concurrency, offline, open_loop
from serving.profiles import load_profile

PROFILE = load_profile("llama-3.1-8b-h100")
SLOW = PROFILE.with_changes(efficiency={"request_overhead_s": 0.01})


def test_one_client_waits_the_overhead_before_each_request_is_scheduled():
    plain, slow = (fixed_concurrency(p, 128, 64, 1, requests=5, warmup=0) for p in (PROFILE, SLOW))
    assert slow.median_ttft_s == pytest.approx(plain.median_ttft_s + 0.01, abs=1e-9)
    assert slow.mean_itl_s == pytest.approx(plain.mean_itl_s, rel=1e-12)
    # each of the five requests waits once more before the engine sees it
    assert slow.elapsed_s == pytest.approx(plain.elapsed_s + 5 * 0.01, abs=1e-9)


def test_a_longer_prompt_waits_longer_before_it_is_scheduled():
    """The server's cost per prompt token (its JSON, tokenization, block hashes) adds to the fixed one: a lone
    client's 4,096-token prompts wait 4,096 times it more, and their steps are the same."""
    per_token = SLOW.with_changes(efficiency={"request_token_s": 2e-6})
    assert per_token.efficiency.request_latency_s(4096) == pytest.approx(0.01 + 4096 * 2e-6)
    slow, slower = (fixed_concurrency(p, 4096, 16, 1, requests=3, warmup=0) for p in (SLOW, per_token))
    assert slower.median_ttft_s == pytest.approx(slow.median_ttft_s + 4096 * 2e-6, abs=1e-9)
    assert slower.mean_itl_s == pytest.approx(slow.mean_itl_s, rel=1e-12)
    assert "request_token_s" not in SLOW.efficiency.model_dump()
    assert per_token.efficiency.model_dump()["request_token_s"] == 2e-6


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


def test_the_servers_worker_spreads_a_wave_so_its_first_request_runs_alone():
    """Eight clients send at once; handed over 2 ms apart, the first request is prefilled alone and the others
    wait for its step, as on real vLLM (docs/vllm-on-h200.md)."""
    spread = PROFILE.with_changes(efficiency={"frontend_request_s": 0.002})
    together, apart = (_first_token_waits(p, 1024, 256, 8) for p in (PROFILE, spread))
    assert max(together) - min(together) < 1e-9
    assert apart[0] < 0.5 * min(apart[1:])


def test_outputs_through_a_busy_worker_reach_the_clients_later():
    slow = PROFILE.with_changes(efficiency={"frontend_token_s": 2e-4})
    plain, late = (fixed_concurrency(p, 128, 64, 64, requests=128, warmup=0) for p in (PROFILE, slow))
    # 64 tokens a step at 0.2 ms each outlast the engine's step: the worker sets the pace
    assert late.mean_itl_s > max(plain.mean_itl_s, 64 * 2e-4 * 0.95)
    assert late.output_tokens_per_s < plain.output_tokens_per_s


def test_streams_ended_one_by_one_send_the_next_wave_spread_out():
    """A wave's answers end in one step; the worker closes their streams in turn, so the clients send again
    `frontend_finish_s` apart (real clients of vLLM 0.20.2: 128 sends over 164 ms)."""
    closing = PROFILE.with_changes(efficiency={"frontend_finish_s": 0.001})
    server = harness._Server(harness.Engine(closing), [(128, 16)] * 16, True, 0.0, closed_loop=True)
    for _ in range(8):
        server.send(0.0)
    server.run()
    second_wave = [t.arrival for t in server.traces[8:]]
    assert [b - a for a, b in itertools.pairwise(second_wave)] == pytest.approx([0.001] * 7)


def test_offline_runs_skip_the_server_whatever_its_costs():
    costly = PROFILE.with_changes(efficiency={"frontend_request_s": 0.01, "frontend_token_s": 1e-3})
    assert offline(costly, [(256, 32)] * 8) == offline(PROFILE, [(256, 32)] * 8)


def test_async_scheduling_makes_a_request_reaching_a_busy_engine_wait_one_more_step():
    """A second prompt arrives while the first is prefilled: the step after that one was chosen when it began, so
    the second joins the step after, one decode step later than a synchronous scheduler would take it."""
    asynchronous = PROFILE.with_changes(scheduler={"async_scheduling": True})
    lengths, sends = [(4096, 64), (1024, 64)], [0.0, 0.05]
    sync_run, async_run = (open_loop(p, lengths, sends) for p in (PROFILE, asynchronous))
    decode_step = fixed_concurrency(PROFILE, 4096, 64, 1, requests=1, warmup=0).mean_itl_s
    assert async_run.mean_ttft_s - sync_run.mean_ttft_s == pytest.approx(decode_step / 2, rel=0.2)
    alone = [(64, 8)]
    assert open_loop(asynchronous, alone, [0.0]) == open_loop(PROFILE, alone, [0.0])


def test_an_open_loop_needs_one_send_time_per_request():
    with pytest.raises(ValueError, match="one send time per request: 1 times for 2 requests"):
        open_loop(PROFILE, [(64, 8), (64, 8)], [0.0])


def _first_token_waits(profile, prompt: int, output: int, clients: int) -> list[float]:
    """Each request's time to first token in one wave of `clients`, in the order they were sent."""
    server = harness._Server(harness.Engine(profile), [(prompt, output)] * clients, True, 0.0)
    for _ in range(clients):
        server.send(0.0)
    server.run()
    return [t.first - t.arrival for t in server.traces]


def test_a_shared_prefix_is_computed_once_and_then_read_from_the_prefix_cache():
    """`vllm bench serve --random-prefix-len`: every prompt begins with the same tokens. One client at a time, the
    first request computes all 4,096 tokens and every later one only the 1,024 after the shared 3,072."""
    shared = fixed_concurrency(PROFILE, 4096, 16, 1, requests=4, warmup=1, shared_prefix_tokens=3072)
    plain = fixed_concurrency(PROFILE, 4096, 16, 1, requests=4, warmup=1)
    short = fixed_concurrency(PROFILE, 1024, 16, 1, requests=4, warmup=1)
    assert shared.median_ttft_s < 0.5 * plain.median_ttft_s
    assert shared.median_ttft_s > short.median_ttft_s  # the hit's new tokens attend the cached 3,072
    assert shared.mean_itl_s == pytest.approx(plain.mean_itl_s, rel=1e-9)  # decoding reads the whole context


def test_a_client_that_reads_every_token_on_one_loop_falls_behind_hundreds_of_streams():
    """128 streams of short answers: a reader that needs more time per token than the engine gives it (a step's
    tokens over its duration) sets the pace the client records, so its tokens per second are at most one over its
    cost, and its clocks run late; a fast reader changes nothing it records but by its own cost."""
    plain = fixed_concurrency(PROFILE, 128, 128, 128, requests=512, warmup=128)
    per_token = 1.0 / plain.output_tokens_per_s
    slow = fixed_concurrency(PROFILE, 128, 128, 128, requests=512, warmup=128, client_token_s=2 * per_token)
    assert 0.4 * plain.output_tokens_per_s < slow.output_tokens_per_s <= 0.5 * plain.output_tokens_per_s * (1 + 1e-9)
    assert slow.median_ttft_s > plain.median_ttft_s and slow.mean_itl_s > 1.5 * plain.mean_itl_s
    fast = fixed_concurrency(PROFILE, 128, 64, 1, requests=4, warmup=0, client_token_s=1e-6)
    alone = fixed_concurrency(PROFILE, 128, 64, 1, requests=4, warmup=0)
    assert fast.median_ttft_s == pytest.approx(alone.median_ttft_s + 1e-6, abs=1e-9)


def test_a_run_reports_the_activity_the_gpu_exporter_would_read_where_the_gpu_has_a_power_model():
    """Long prompts keep the tensor pipe busier than short ones; short decodes keep HBM the busier: the figures the
    bench compares with DCGM's samples of the real runs."""
    capped = PROFILE.with_changes(gpu={"compute_power_w": 650.0, "memory_power_w": 600.0})
    long_prompts = fixed_concurrency(capped, 8192, 8, 8, requests=8, warmup=0)
    short_prompts = fixed_concurrency(capped, 128, 128, 8, requests=8, warmup=0)
    assert 0.5 < long_prompts.tensor_active <= 1.0 and short_prompts.tensor_active < 0.1
    assert short_prompts.dram_active > 0.5 > long_prompts.dram_active
    plain = fixed_concurrency(PROFILE, 128, 16, 8, requests=8, warmup=0)
    assert plain.tensor_active == plain.dram_active == 0.0  # no power model: nothing to compare
