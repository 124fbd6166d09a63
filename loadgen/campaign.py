"""A load campaign as a validated YAML file: target, API, shape, arrivals, lengths, SLO, seed, tags; and the
requests it sends (times and lengths), built the same way for a local run, each worker and the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import (
    Field,
    HttpUrl,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from loadgen.arrivals import PROCESSES, arrival_times
from loadgen.shapes import Shape, Trace
from loadgen.workloads.load import length_sampler, load_workload
from loadgen.workloads.servegen import LengthSampler
from loadgen.workloads.workload import Workload
from serving.common.config import validation_problems
from serving.common.strict import Strict


class CampaignError(ValueError):
    """A campaign file that cannot be used: names the file and each bad key with its value."""


class Arrivals(Strict):
    process: Literal[PROCESSES] = "poisson"  # type: ignore[valid-type]
    cv: PositiveFloat = 1.0  # gamma: coefficient of variation of the gaps (above 1 is burstier than Poisson)


class Lengths(Strict):
    """Token lengths for shapes without a trace: fixed, or drawn from a trace's (prompt, output) pairs."""

    prompt_tokens: PositiveInt = 512
    output_tokens: PositiveInt = 128
    spread: float = Field(0.0, ge=0, le=3)  # > 0: log-normal lengths with these means and this sigma
    from_trace: str | None = None
    shared_prefix_tokens: int = Field(0, ge=0)


class Slo(Strict):
    ttft_s: PositiveFloat = 1.0
    tpot_s: PositiveFloat = 0.05  # mean time per output token after the first (vllm bench serve's TPOT)


class Campaign(Strict):
    name: str = Field(min_length=1)
    target: HttpUrl
    model: str = Field(min_length=1)
    api: Literal["completions", "chat"] = "completions"
    stream: bool = True
    ignore_eos: bool = True
    shape: Shape
    duration_s: PositiveFloat | None = None
    arrivals: Arrivals = Arrivals()
    lengths: Lengths = Lengths()
    slo: Slo = Slo()
    seed: int = 0
    timeout_s: PositiveFloat = 600.0  # per request
    max_requests: PositiveInt | None = None  # a bound on top of the duration
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _duration(self):
        if not isinstance(self.shape, Trace):
            self.shape.duration(self.duration_s)  # raises when a shape needs one
        return self

    @property
    def base_url(self) -> str:
        return str(self.target).rstrip("/")


SHIPPED = Path(__file__).with_name("campaigns")


def load_campaign(path: str | Path, overrides: dict | None = None) -> Campaign:
    """Read and validate; every problem is reported with the file, the key path and the value given."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CampaignError(f"campaign {path}: no such file") from None
    except yaml.YAMLError as e:
        raise CampaignError(f"campaign {path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise CampaignError(f"campaign {path}: expected a mapping of keys, got {type(data).__name__}")
    data.update(overrides or {})
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as e:
        problems = [f"  {problem}" for problem in validation_problems(e)]
        raise CampaignError(f"campaign {path}: {len(problems)} problem(s)\n" + "\n".join(problems)) from None
    return _resolve_paths(campaign, path.parent)


def _resolve_paths(campaign: Campaign, folder: Path) -> Campaign:
    """Trace paths are relative to the campaign file's folder when they exist there (shipped campaigns), else
    to the working directory."""

    def resolve(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute():
            return value
        beside = folder / value
        return str(beside.resolve()) if beside.exists() else value

    shape = campaign.shape
    if isinstance(shape, Trace):
        shape = shape.model_copy(update={"path": resolve(shape.path), "lengths_from": resolve(shape.lengths_from)})
    lengths = campaign.lengths.model_copy(update={"from_trace": resolve(campaign.lengths.from_trace)})
    return campaign.model_copy(update={"shape": shape, "lengths": lengths})


def campaign_workload(campaign: Campaign) -> Workload:
    """Every request the campaign sends: arrival time from the start, prompt and output tokens. Reproducible."""
    shape = campaign.shape
    if isinstance(shape, Trace):
        workload = load_workload(
            shape.path,
            start_s=shape.start_s,
            end_s=shape.end_s,
            time_scale=shape.time_scale,
            rate_scale=shape.rate_scale,
            seed=campaign.seed,
            lengths_from=shape.lengths_from,
        )
        if campaign.duration_s is not None:
            workload = workload.window(0.0, campaign.duration_s)
    else:
        duration = shape.duration(campaign.duration_s)
        times = arrival_times(shape.rate_at, duration, campaign.arrivals.process, campaign.arrivals.cv, campaign.seed)
        lengths = campaign.lengths
        if lengths.from_trace or lengths.spread > 0:
            sampler = (
                length_sampler(lengths.from_trace)
                if lengths.from_trace
                else LengthSampler.lognormal(
                    lengths.prompt_tokens, lengths.output_tokens, lengths.spread, campaign.seed
                )
            )
            prompts, outputs = sampler.sample(len(times), np.random.default_rng(campaign.seed + 1))
        else:
            prompts = np.full(len(times), lengths.prompt_tokens)
            outputs = np.full(len(times), lengths.output_tokens)
        workload = Workload(
            campaign.name, times, np.asarray(prompts, dtype=np.int64), np.asarray(outputs, dtype=np.int64)
        )
    if campaign.max_requests is not None and len(workload) > campaign.max_requests:
        keep = slice(0, campaign.max_requests)
        workload = Workload(
            workload.name, workload.arrival_s[keep], workload.prompt_tokens[keep], workload.output_tokens[keep]
        )
    return workload
