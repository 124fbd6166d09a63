"""The Prometheus source: snapshots for two targets from a real Prometheus scraping emulators and the gateway in front
of one (one query per signal for both), and stale flags when Prometheus is down, slow, or answers NaN or nothing."""

import json
import math
import threading
import time
import urllib.error
import urllib.request

import pytest

from autoscaler.sources.prometheus import FleetCounts, PrometheusSource, PrometheusSourceConfig
from headroom.prometheus import PrometheusProcess
from serving.fleet.fleet import free_port
from tests.helpers import EmulatorServer, GatewayServer, LoopbackHttpServer, LoopThread, QuietHandler

COUNTS = {"chat": FleetCounts(desired=1, ready=1), "code": FleetCounts(desired=1, ready=1), "ghost": FleetCounts(2, 2)}


def load(url: str, model: str, n: int, max_tokens: int = 4) -> list[int]:
    """`n` requests one after another; their HTTP statuses."""
    statuses = []
    for _ in range(n):
        body = json.dumps(
            {"model": model, "prompt": "one two three four", "max_tokens": max_tokens, "ignore_eos": True}
        ).encode()
        request = urllib.request.Request(f"{url}/v1/completions", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()
                statuses.append(answer.status)
        except urllib.error.HTTPError as err:
            statuses.append(err.code)
    return statuses


@pytest.mark.integration
def test_snapshots_for_every_target_from_a_real_prometheus(tmp_path):
    loop = LoopThread()
    with (
        EmulatorServer(served_model_name="chat") as chat,
        EmulatorServer(served_model_name="code") as code,
        GatewayServer(
            [f"127.0.0.1:{chat.port}"], max_in_flight_per_backend=1, default_limits={"max_queue": 3}
        ) as gateway,
    ):
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "scrape_configs": [
                {
                    "job_name": "vllm",
                    "static_configs": [{"targets": [f"127.0.0.1:{chat.port}", f"127.0.0.1:{code.port}"]}],
                },
                {"job_name": "gateway", "static_configs": [{"targets": [f"127.0.0.1:{gateway.port}"]}]},
            ],
        }
        # until its health checks report the backend's models, the gateway labels requests `unknown`: a loaded
        # machine's late first check would leave the engine's completions outside the model's demand
        wait_for_models(gateway.url, "chat")
        load(gateway.url, "chat", 1)  # the gateway's series for the model exist from its first request on
        prometheus = PrometheusProcess(config, tmp_path / "prom", port=free_port())
        loop.call(prometheus.start())
        try:
            wait_for_targets(prometheus.url, 3)
            assert set(load(gateway.url, "chat", 20)) == {200}  # one at a time: its one slot serves them all
            load(code.url, "code", 3)
            time.sleep(2)  # scraped before the burst: rate() counts all of it
            # through the gateway, more at once than its one slot and queue of 3 hold: some wait there, the rest are
            # turned away (429), and the engine finishes fewer than came
            statuses: list[int] = []
            senders = [
                threading.Thread(target=lambda: statuses.extend(load(gateway.url, "chat", 1, max_tokens=300)))
                for _ in range(30)  # the 429s then outweigh rate() extrapolating two counters differently
            ]
            for sender in senders:
                sender.start()
            time.sleep(2)
            # the burst's 429s scraped, with two samples since, so rate() sees them
            wait_for_answer(prometheus.url, 'increase(headroom_gateway_requests_total{status="429"}[10s]) >= 1')
            time.sleep(
                2.5
            )  # two more points of history with them in the window (the history's last two are not judged)
            queries = []

            def counted(client_query):
                def run(promql):
                    queries.append(promql)
                    return client_query(promql)

                return run

            source = PrometheusSource(PrometheusSourceConfig(url=prometheus.url, rate_window="30s"))
            source._query = counted(source._query)
            snaps = source.snapshots(COUNTS)
            from prometheus_api_client import PrometheusConnect

            seen = PrometheusConnect(prometheus.url).custom_query  # for the message if the demand assertion fails
            gateway_seen = seen(source.config.query("gateway_arrival_rate")) + seen(
                "increase(headroom_gateway_requests_total[30s]) > 0"
            )
            now = time.time()
            history = source.history(["chat", "code", "ghost"], now - 30, now, 1.0)
            engines_only = PrometheusSource(
                PrometheusSourceConfig(url=prometheus.url, rate_window="30s", gateway=False)
            )
            completions = engines_only.history(["chat", "code"], now - 30, now, 1.0)
            for sender in senders:
                sender.join(60)
        finally:
            loop.call(prometheus.stop())
            loop.close()
    assert len(queries) == 11  # one per signal, for every target at once
    chat_snap, code_snap, ghost = snaps["chat"], snaps["code"], snaps["ghost"]
    assert not chat_snap.stale and not code_snap.stale and ghost.stale, snaps
    assert statuses.count(429) >= 5 and statuses.count(200) >= 4, statuses
    # the demand at the gateway, turned away or held, not only what the engine finished
    assert chat_snap.arrival_rate > chat_snap.completion_rate > code_snap.completion_rate > 0, (
        chat_snap.arrival_rate,
        chat_snap.completion_rate,
        [(row["metric"].get("model"), row["metric"].get("status"), row["value"][1]) for row in gateway_seen],
    )
    assert chat_snap.gateway_queue >= 1, chat_snap
    assert (
        code_snap.arrival_rate == code_snap.completion_rate and code_snap.gateway_queue == 0
    )  # no gateway: its engine
    assert chat_snap.output_tokens_rate > 0 and 0 < chat_snap.ttft_p95_s < 1.0
    assert len(chat_snap.replicas) == 1 and chat_snap.sample_age_s < 5.0
    assert math.isnan(ghost.arrival_rate) and ghost.desired == 2
    times, rates = history["chat"]  # the warm start: the rate over time, one point a second
    assert len(times) >= 3 and max(rates) > 0 and times == sorted(times) and history["ghost"] == ([], [])
    # it reads demand as the snapshot does: never below the engine's completions, and above them once the burst is
    # in the window (requests turned away or held); the last points aside, as a scrape may land between the queries
    finished = dict(zip(*completions["chat"]))
    settled = [(t, rate) for t, rate in zip(times[:-2], rates[:-2]) if t in finished]
    assert settled and all(rate >= finished[t] for t, rate in settled), (history["chat"], completions["chat"])
    # once the 429s are scraped (a second or two before the history is read, on a loaded machine)
    assert any(rate > finished[t] > 0 for t, rate in settled[-3:]), (history["chat"], completions["chat"])
    # no gateway: its engine (the last points aside: a scrape may land between the two queries)
    assert history["code"][1][:-2] == completions["code"][1][:-2] and max(completions["code"][1]) > 0


def wait_for_models(url: str, model: str, timeout_s: float = 30.0) -> None:
    deadline = time.time() + timeout_s
    while True:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as answer:
            if model in [m["id"] for m in json.load(answer)["data"]]:
                return
        if time.time() > deadline:
            raise AssertionError(f"the gateway at {url} did not list {model} within {timeout_s:.0f} s")
        time.sleep(0.1)


def wait_for_targets(url: str, count: int, timeout_s: float = 30.0) -> None:
    """Prometheus applies its first targets a few seconds after start: wait until `count` are up."""
    wait_for_answer(url, "up == 1", count, timeout_s)


def wait_for_answer(url: str, promql: str, count: int = 1, timeout_s: float = 30.0) -> None:
    """Until Prometheus answers `promql` with at least `count` series: what a test reads has been scraped (on a
    loaded machine a scrape may come late, or time out once)."""
    from prometheus_api_client import PrometheusConnect

    client, deadline = PrometheusConnect(url), time.time() + timeout_s
    while len(client.custom_query(promql)) < count:
        if time.time() > deadline:
            raise TimeoutError(f"no {count} series for {promql} in {timeout_s:g} s")
        time.sleep(0.5)


class FakePrometheus:
    """An HTTP server answering /api/v1/query like Prometheus, with a chosen fault."""

    def __init__(self, mode: str):
        self.mode = mode
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):
                if outer.mode == "slow":
                    time.sleep(3)
                now = time.time()
                result = (
                    []
                    if outer.mode == "empty"
                    else [{"metric": {"model_name": "chat", "instance": "a"}, "value": [now, "NaN"]}]
                )
                if outer.mode == "nan-rate-fresh-sample":
                    result = [
                        {
                            "metric": {"model_name": "chat", "instance": "a"},
                            "value": [now, str(now) if "timestamp" in self.path else "NaN"],
                        }
                    ]
                self.reply(
                    200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
                )

        self.http = LoopbackHttpServer(Handler)

    def __enter__(self):
        return self.http.start().url

    def __exit__(self, *exc):
        self.http.close()


@pytest.mark.parametrize("mode", ["empty", "nan-rate-fresh-sample", "slow"])
def test_nan_empty_or_slow_answers_are_stale(mode):
    with FakePrometheus(mode) as url:
        snap = PrometheusSource(PrometheusSourceConfig(url=url, timeout_s=1.0)).snapshots(COUNTS)["chat"]
    assert snap.stale and math.isnan(snap.arrival_rate)
    if mode == "slow":
        assert len(snap.extra["errors"]) == 1  # reported, not raised; and the pass stops at the first, stale anyway


def test_prometheus_down_is_stale_not_an_exception():
    snap = PrometheusSource(PrometheusSourceConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=1.0)).snapshots(
        COUNTS
    )
    assert all(s.stale for s in snap.values())
    assert "ConnectionError" in " ".join(snap["chat"].extra["errors"]) or snap["chat"].extra["errors"]


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="stale_after_s"):
        PrometheusSourceConfig(stale_after_s=-1)
    with pytest.raises(ValueError, match="selectr"):
        PrometheusSourceConfig(selectr="x")


def test_a_failing_gateway_query_is_reported_and_the_engines_signals_stand():
    """The gateway's signals are optional: one that errors (a bad override, say) leaves the snapshot fresh, on the
    engines' completions and no queue, with the error reported."""
    now = time.time()

    def query(promql):
        if "headroom_gateway" in promql:
            raise ValueError("bad query")
        value = str(now) if "timestamp" in promql else "0.5" if "kv_cache" in promql else "2.5"
        return [{"metric": {"model_name": "chat", "instance": "a"}, "value": [now, value]}]

    source = PrometheusSource(PrometheusSourceConfig(queries={"gateway_queue": "headroom_gateway_bogus"}), query=query)
    snap = source.snapshots({"chat": FleetCounts(1, 1)}, now)["chat"]
    assert not snap.stale and snap.arrival_rate == snap.completion_rate == 2.5 and snap.gateway_queue == 0
    assert sorted(e.split(":")[0] for e in snap.extra["errors"]) == ["gateway_arrival_rate", "gateway_queue"]


def scripted(values: dict[str, str], sample_time: float):
    """A query function answering each signal (matched by a fragment of its PromQL) for target chat, replica a."""

    def query(promql):
        if "timestamp" in promql:
            return [{"metric": {"model_name": "chat"}, "value": [sample_time, str(sample_time)]}]
        for fragment, value in values.items():
            if fragment in promql:
                return [{"metric": {"model_name": "chat", "instance": "a"}, "value": [sample_time, value]}]
        return [{"metric": {"model_name": "chat", "instance": "a"}, "value": [sample_time, "1"]}]

    return query


@pytest.mark.parametrize(
    "fragment, value, named",
    [
        ("num_requests_waiting", "+Inf", "waiting of a reads inf"),
        ("num_requests_running", "-3", "running of a reads -3.0"),
        ("kv_cache_usage", "NaN", "kv_usage of a reads nan"),
        ("request_success_total", "1e300", "arrival_rate reads 1e+300"),
        ("DCGM", "+Inf", "gpu_util of a reads inf"),
    ],
)
def test_non_finite_or_absurd_values_make_the_target_stale(fragment, value, named):
    now = time.time()
    config = PrometheusSourceConfig(gpu_util_query="avg by (model_name, instance) (DCGM_FI_DEV_GPU_UTIL)")
    snap = PrometheusSource(config, query=scripted({fragment: value}, now)).snapshots({"chat": FleetCounts(1, 1)}, now)[
        "chat"
    ]
    assert snap.stale and named in " ".join(snap.extra["errors"])
    assert snap.replicas == () and math.isnan(snap.arrival_rate)  # nothing of it reaches a policy


def test_samples_from_the_future_are_stale():
    now = time.time()
    source = PrometheusSource(PrometheusSourceConfig(), query=scripted({}, now + 3600))
    snap = source.snapshots({"chat": FleetCounts(1, 1)}, now)["chat"]
    assert snap.stale and "3600 s in the future" in " ".join(snap.extra["errors"])
    within_skew = PrometheusSource(PrometheusSourceConfig(), query=scripted({}, now + 2)).snapshots(
        {"chat": FleetCounts(1, 1)}, now
    )
    assert not within_skew["chat"].stale
