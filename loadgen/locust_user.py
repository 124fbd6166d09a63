"""The Locust side of a campaign: one open-loop dispatcher user per Locust process that sends its share of the
campaign's requests at their planned times (never waiting for answers), times each streamed response, and
feeds TTFT, TPOT and ITL into Locust's own statistics next to the request itself; a LoadTestShape that keeps
one dispatcher per process and stops the test when every process has sent and received everything."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field

import gevent
import numpy as np
from gevent.pool import Group
from locust import LoadTestShape, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from loadgen.campaign import Campaign
from loadgen.openai.request import RequestSpec, build_body
from loadgen.openai.stream import Measured, StreamTimer, error_from_body, measure_full
from loadgen.records import RecordWriter
from loadgen.timed_client import SendTimedPool
from loadgen.workloads.workload import Workload

DONE_MESSAGE = "headroom_done"
_JSON = {"Content-Type": "application/json"}


@dataclass
class Plan:
    """What this Locust process does: the campaign, every request of it, how many processes share it."""

    campaign: Campaign
    workload: Workload
    processes: int
    records: RecordWriter | None = None
    done_processes: set = field(default_factory=set)
    finished: bool = False

    def share(self, index: int) -> np.ndarray:
        return np.arange(index, len(self.workload), self.processes)

    @property
    def grace_s(self) -> float:
        return self.campaign.timeout_s + 30.0


def measure_request(client, campaign: Campaign, spec: RequestSpec) -> tuple[Measured, float]:
    """Send one request through Locust's fast client; (measurement, perf_counter when its request began to go out)."""
    path, body = build_body(
        campaign.api,
        campaign.model,
        spec,
        stream=campaign.stream,
        ignore_eos=campaign.ignore_eos,
        shared_prefix=campaign.lengths.shared_prefix_tokens,
    )
    payload = json.dumps(body).encode()  # encoded before the clock starts: TTFT times the server, not our JSON
    sent = time.perf_counter()  # kept where no request went out (no connection)
    with client.post(
        path, data=payload, headers=_JSON, stream=campaign.stream, catch_response=True, name=path
    ) as response:
        sent = getattr(getattr(response, "_response", None), "headroom_sent_s", sent)
        status = response.status_code or 0
        if getattr(response, "error", None) is not None and not status:
            measured = Measured(
                ok=False,
                status=0,
                error=f"{type(response.error).__name__}: {response.error}",
                e2e_s=time.perf_counter() - sent,
            )
        elif not 200 <= status < 300:
            measured = Measured(
                ok=False,
                status=status,
                error=error_from_body(response.content or b"", status),
                e2e_s=time.perf_counter() - sent,
            )
        elif campaign.stream:
            measured = _read_stream(response, sent)
        else:
            measured = measure_full(response.content or b"", status, sent, time.perf_counter())
        response.request_meta["response_time"] = measured.e2e_s * 1000.0
        response.request_meta["response_length"] = measured.output_tokens
        if measured.ok:
            response.success()
        else:
            response.failure(measured.error)
    return measured, sent


def _read_stream(response, sent: float) -> Measured:
    """Each SSE message as soon as its blank line arrives (the client's readline on the raw response)."""
    timer = StreamTimer(sent)
    raw = response._response
    try:
        while not timer.done:
            message = raw.readline(b"\n\n")
            now = time.perf_counter()
            if not message:
                break
            timer.feed(message, now)
    except Exception as e:  # connection reset mid-stream: a failed request, with what was measured so far  # noqa: BLE001
        timer._fail(f"{type(e).__name__}: {e}")
    finally:
        raw.release()
    return timer.finish(time.perf_counter())


class CampaignUser(FastHttpUser):
    """One per Locust process; `environment.headroom_plan` is set by the locustfile."""

    abstract = True
    concurrency = 100_000  # connections in the pool: an open loop must never queue behind its own client
    max_retries = 0
    insecure = True

    def __init__(self, environment):
        super().__init__(environment)
        session = self.client.client
        session.clientpool = SendTimedPool(**session.clientpool.client_args)

    def _fire(self, name: str, seconds: float, tokens: int) -> None:
        if not math.isnan(seconds):
            self.environment.events.request.fire(
                request_type="LLM",
                name=name,
                response_time=seconds * 1000.0,
                response_length=tokens,
                exception=None,
                context={},
            )

    def _one(self, plan: Plan, i: int, start: float) -> None:
        w, campaign = plan.workload, plan.campaign
        spec = RequestSpec(int(i), int(w.prompt_tokens[i]), int(w.output_tokens[i]))
        measured, sent = measure_request(self.client, campaign, spec)
        if measured.ok:
            self._fire("TTFT", measured.ttft_s, measured.output_tokens)
            self._fire("TPOT", measured.tpot_s, measured.output_tokens)
            if measured.itl_s:  # one entry per request keeps Locust's cost per token low; records keep every gap
                self._fire("ITL (mean per request)", float(np.mean(measured.itl_s)), len(measured.itl_s))
        itl = measured.itl_s
        plan.records.write(
            {
                "index": int(i),
                "worker": int(self.environment.runner.worker_index),
                "scheduled_s": float(w.arrival_s[i]),
                "sent_s": sent - start,
                "lag_s": sent - start - float(w.arrival_s[i]),
                "ok": measured.ok,
                "status": measured.status,
                "error": measured.error,
                "ttft_s": measured.ttft_s,
                "tpot_s": measured.tpot_s,
                "itl_mean_s": float(np.mean(itl)) if itl else math.nan,
                "itls_s": itl,
                "e2e_s": measured.e2e_s,
                "prompt_tokens": spec.prompt_tokens,
                "prompt_tokens_reported": measured.prompt_tokens,
                "output_tokens_requested": spec.output_tokens,
                "output_tokens": measured.output_tokens,
                "usage_reported": measured.usage_reported,
                "response_id": measured.response_id,
            }
        )

    @task
    def dispatch(self) -> None:
        plan: Plan = self.environment.headroom_plan
        runner = self.environment.runner
        mine = plan.share(max(0, runner.worker_index))
        arrivals = plan.workload.arrival_s
        group = Group()
        start = time.perf_counter()
        for i in mine:
            wait = start + arrivals[i] - time.perf_counter()
            if wait > 0:
                gevent.sleep(wait)
            group.spawn(self._one, plan, i, start)
        group.join(timeout=plan.campaign.timeout_s + 5.0)
        group.kill(block=True, timeout=5.0)
        plan.records.close()
        if hasattr(runner, "send_message") and runner.__class__.__name__ == "WorkerRunner":
            runner.send_message(DONE_MESSAGE, runner.worker_index)
        else:
            plan.done_processes.add(0)
        raise StopUser()


class CampaignShape(LoadTestShape):
    """One dispatcher per Locust process while the campaign runs; the test ends when every process reports that
    all its requests are answered, or at the campaign's length plus the request timeout at the latest."""

    use_common_options = False

    def tick(self):
        plan: Plan = self.runner.environment.headroom_plan
        w = plan.workload
        limit = (float(w.arrival_s[-1]) if len(w) else 0.0) + plan.grace_s
        if len(plan.done_processes) >= plan.processes or self.get_run_time() > limit:
            plan.finished = len(plan.done_processes) >= plan.processes
            return None
        return plan.processes, plan.processes


def progress_line(plan: Plan, stats, elapsed: float) -> str:
    path = "/v1/chat/completions" if plan.campaign.api == "chat" else "/v1/completions"
    requests = stats.get(path, "POST")
    ttft = stats.get("TTFT", "LLM")
    p50 = ttft.get_response_time_percentile(0.5) if ttft.num_requests else float("nan")
    return (
        f"\r  {plan.campaign.name}: {elapsed:6.0f} s  answered {requests.num_requests:>7,} of {len(plan.workload):,}"
        f"  failed {requests.num_failures:,}  TTFT p50 {p50:.0f} ms   "
    )


def report_progress(environment, plan: Plan, every_s: float = 5.0) -> None:
    """A progress line on stderr while the test runs (master or local process)."""
    start = time.time()
    while True:
        gevent.sleep(every_s)
        print(progress_line(plan, environment.runner.stats, time.time() - start), end="", file=sys.stderr, flush=True)
