"""The locustfile `headroom loadtest run` starts Locust with (locally, or as master and workers). The edge
where a campaign reaches Locust: its path, the results folder and the number of processes come from
HEADROOM_* environment variables set by the runner."""

from __future__ import annotations

import os
from pathlib import Path

import gevent
from locust import events

from loadgen.campaign import campaign_workload, load_campaign
from loadgen.locust_user import DONE_MESSAGE, CampaignShape, CampaignUser, Plan, report_progress
from loadgen.records import RecordWriter

CAMPAIGN = os.environ.get("HEADROOM_CAMPAIGN", "")
RESULTS = Path(os.environ.get("HEADROOM_RESULTS", "."))
PROCESSES = int(os.environ.get("HEADROOM_PROCESSES", "1"))


class Dispatcher(CampaignUser):
    abstract = False


class Shape(CampaignShape):
    pass


@events.init.add_listener
def _init(environment, **_kwargs):
    campaign = load_campaign(CAMPAIGN)
    plan = Plan(campaign, campaign_workload(campaign), PROCESSES)
    environment.headroom_plan = plan
    Dispatcher.host = campaign.base_url
    Dispatcher.network_timeout = campaign.timeout_s
    Dispatcher.connection_timeout = min(10.0, campaign.timeout_s)
    runner = environment.runner
    kind = runner.__class__.__name__
    if kind != "MasterRunner":
        plan.records = RecordWriter(RESULTS / "records" / f"{kind.lower()}-{os.getpid()}.jsonl")
    if kind == "MasterRunner":
        runner.register_message(DONE_MESSAGE, lambda msg, **_kw: plan.done_processes.add(msg.data))
    if kind != "WorkerRunner":
        gevent.spawn(report_progress, environment, plan)
