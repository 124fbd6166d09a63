"""Live: every console page in Streamlit's AppTest against `headroom up`'s own Prometheus and Alertmanager after a
Locust campaign, the figures checked against PromQL answers over the recorded series; then a real `headroom console` opened
page by page in headless Chromium (no error element, charts drawn, a screenshot kept)."""

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from autoscaler.planner.core import Slo, Traffic, plan
from autoscaler.planner.inputs import candidates
from bench.console import chromium, open_page
from headroom.stack import LocalStack, StackConfig
from loadgen.campaign import SHIPPED
from loadgen.run import run_campaign
from ui import fetch, prom
from ui.views import cost, slos

pytestmark = pytest.mark.integration
SCRAPE_S = 2
ARTIFACTS = Path(os.environ.get("HEADROOM_TEST_ARTIFACTS", "results/test-artifacts"))


class RunningStack:
    """The local stack on an event loop of its own thread, for tests that read it from outside."""

    def __init__(self, config: StackConfig):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = self.call(self._build(config))

    @staticmethod
    async def _build(config: StackConfig) -> LocalStack:
        return LocalStack(config)  # its servers bind to the loop that builds them

    def call(self, coro, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.call(self.stack.stop(), 120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("console") / "run"
    running = RunningStack(
        StackConfig(
            replicas=1,
            cold_start_s=0.5,
            gateway_port=0,
            prometheus_port=0,
            scrape_interval_s=SCRAPE_S,
            run_dir=run_dir,
            autoscale=True,
            autoscale_max=3,
            autoscale_interval_s=2.0,
        )
    )
    try:
        running.call(running.stack.start())
        stack = running.stack
        campaign = {
            "target": stack.gateway_url,
            "model": stack.profile.model.name,
            "duration_s": 15,
            "shape": {"kind": "constant", "rate": 20},
            "lengths": {"prompt_tokens": 600, "output_tokens": 180, "spread": 0.8},
        }
        summary, code = run_campaign(
            str(SHIPPED / "demo.yaml"), run_dir.parent / "campaign", quiet=True, overrides=campaign
        )
        assert code == 0 and summary["completed"] > 200 and summary["failed"] == 0, summary
        time.sleep(4 * SCRAPE_S)  # the last scrapes and a rule evaluation after them
        yield stack
    finally:
        running.close()


@pytest.fixture
def console_env(live, monkeypatch):
    monkeypatch.setenv("HEADROOM_PROMETHEUS_URL", live.prometheus.url)
    monkeypatch.setenv("HEADROOM_ALERTMANAGER_URL", live.alertmanager.url)
    monkeypatch.setenv("HEADROOM_DECISION_LOG", str(live.decision_log_path))
    fetch.instant.clear()
    fetch.range_query.clear()
    return live


def page(module: str) -> AppTest:
    at = AppTest.from_string(f"from ui.views import {module}\n{module}.render()\n", default_timeout=60)
    return at.run()


def same_bucket(check):
    """Run `check(now)` where `now` is the page's evaluation time: again if the TTL bucket turned meanwhile."""
    for _ in range(3):
        now = fetch.now_s()
        result = check(now)
        if fetch.now_s() == now:
            return result
    raise AssertionError("the evaluation time kept moving")


def test_cost_page_shows_what_promql_answers(console_env):
    url = console_env.prometheus.url

    def check(now):
        at = page("cost")
        intervals = fetch.rule_intervals(url)
        expected = cost.model_table(
            {s: prom.instant(url, q, now) for s, q in cost.model_queries(3600, intervals).items()}
        )
        return at, expected, prom.instant(url, cost.RECORDED_1H, now).frame

    at, expected, recorded = same_bucket(check)
    assert not at.exception and not at.error, (at.exception, at.error)
    shown = at.dataframe[0].value
    assert len(shown) == 1 and shown["output_tokens"].iloc[0] > 0 and shown["cost_allocation"].iloc[0] > 0
    for column in (
        "cost_allocation",
        "cost_idle",
        "gpu_hours",
        "output_tokens",
        "per_m_output_allocation",
        "per_m_output_usage",
        "per_m_prompt_allocation",
    ):
        assert shown[column].iloc[0] == pytest.approx(expected[column].iloc[0], rel=1e-9), column
    assert not recorded.empty and any(f"{float(v):.3f}" in c.value for v in recorded["value"] for c in at.caption), (
        "recorded 1h figure shown"
    )
    assert any("sum_over_time(model_name:headroom_cost_dollars_per_hour:sum[3600s])" in c.value for c in at.caption)
    assert at.get("download_button")
    assert any("GPU utilization" in m.label and m.value.endswith("%") for m in at.metric)


def test_slos_page_shows_the_recorded_error_ratios_and_alertmanager(console_env):
    url = console_env.prometheus.url

    def check(now):
        at = page("slos")
        return at, slos.slo_table({k: prom.instant(url, q, now) for k, q in slos.slo_queries().items()})

    at, expected = same_bucket(check)
    assert not at.exception and not at.error, (at.exception, at.error)
    shown = at.dataframe[0].value
    ttft = shown[shown["sli"] == "ttft"].iloc[0]
    assert ttft["attainment_5m"] == pytest.approx(expected[expected["sli"] == "ttft"].iloc[0]["attainment_5m"])
    assert 0.0 <= ttft["attainment_5m"] <= 1.0
    firing = prom.alerts(console_env.alertmanager.url)
    assert (at.success and not firing) or (len(at.dataframe) == 2 and len(at.dataframe[1].value) == len(firing))


def test_autoscaler_page_charts_replicas_and_explains_the_count(console_env):
    at = page("autoscaler")
    assert not at.exception and not at.error, (at.exception, at.error)
    target = console_env.profile.model.name
    why = [m.value for m in at.markdown if "Why this many replicas now" in m.value]
    assert why and target in why[0] and "replica" in why[0]
    decisions = at.dataframe[0].value
    assert len(decisions) > 3 and set(decisions["target"]) == {target} and decisions["reasons"].str.len().min() > 0


def test_planner_page_answers_as_the_library(console_env, tmp_path):
    at = page("planner")
    assert not at.exception and not at.error, (at.exception, at.error)
    shown = next(d.value for d in at.dataframe if "profile" in d.value.columns)
    rows = plan(Traffic(20.0, 1000.0, 200.0), Slo(), candidates(None, tmp_path))
    assert list(shown["profile"]) == [r.profile for r in rows]
    assert list(shown["replicas"]) == [r.replicas for r in rows]
    best = next(r for r in rows if r.meets_slo)
    assert best.profile in at.success[0].value


def test_a_prometheus_that_does_not_answer_is_a_message_not_a_trace(monkeypatch):
    monkeypatch.setenv("HEADROOM_PROMETHEUS_URL", "http://127.0.0.1:9")
    for module in ("cost", "slos", "autoscaler"):
        at = page(module)
        assert not at.exception, module
        assert "did not answer" in at.error[0].value and "headroom up" in at.error[0].value, module


def test_headless_chromium_opens_every_page(console_env):
    from headroom.console import console_command
    from headroom.console import console_env as env_for
    from serving.fleet.fleet import free_port

    port = free_port("127.0.0.1")
    env = env_for(console_env.prometheus.url, console_env.alertmanager.url, console_env.decision_log_path)
    proc = subprocess.Popen(
        console_command("127.0.0.1", port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    browser = None
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        browser = chromium()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for path, title in (
            ("", "Cost per token"),
            ("planner", "Capacity planner"),
            ("autoscaler", "Autoscaler"),
            ("slos", "SLOs and alerts"),
        ):
            found = open_page(browser, f"http://127.0.0.1:{port}/{path}")
            time.sleep(1.0)  # the charts' canvases draw after their elements appear
            path = path or "cost"
            assert title in browser.find_element("tag name", "h1").text and "Page not found" not in browser.page_source
            shot = ARTIFACTS / f"console-{path}.png"
            browser.save_screenshot(str(shot))
            assert found["stException"] == 0 and found["stAlertContentError"] == 0, (path, found)
            assert found["stVegaLiteChart"] > 0, f"{path}: no chart drawn ({found})"
            assert shot.stat().st_size > 10_000, f"{path}: screenshot too small to hold a page"
    finally:
        if browser is not None:
            browser.quit()
        proc.terminate()
        proc.wait(15)


def wait_http(url: str, timeout_s: float) -> None:
    import requests

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s:g} s")


def test_a_prometheus_without_data_yet_says_what_to_start(tmp_path, monkeypatch):
    """A real Prometheus that scrapes nothing: every page says what is missing and what to start."""
    from headroom.prometheus import PrometheusProcess
    from serving.fleet.fleet import free_port

    bare = PrometheusProcess(
        {"global": {"scrape_interval": "15s"}, "scrape_configs": []},
        tmp_path / "prometheus",
        port=free_port("127.0.0.1"),
    )
    loop = asyncio.new_event_loop()  # the process is started and stopped on one loop
    loop.run_until_complete(bare.start())
    try:
        monkeypatch.setenv("HEADROOM_PROMETHEUS_URL", bare.url)
        monkeypatch.delenv("HEADROOM_ALERTMANAGER_URL", raising=False)
        fetch.instant.clear()
        fetch.range_query.clear()
        for module, words in (
            ("cost", "No cost series"),
            ("slos", "No SLO series"),
            ("autoscaler", "No autoscaler series"),
        ):
            at = page(module)
            assert not at.exception and not at.error, (module, at.exception, at.error)
            assert any(words in i.value and "yet" in i.value for i in at.info), (module, [i.value for i in at.info])
        at = AppTest.from_string("from ui.views import planner\nplanner.render()\n", default_timeout=60).run()
        at.radio[0].set_value("A model's recent traffic").run()
        assert not at.exception and any("No model has traffic" in i.value for i in at.info)
    finally:
        loop.run_until_complete(bare.stop())
        loop.close()
