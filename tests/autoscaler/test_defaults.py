"""One source for the simulator's defaults: `headroom simulate`'s flags, SimulateArgs, SimConfig and the predictive
policy agree, because they all read autoscaler.defaults."""

import dataclasses

from autoscaler import defaults
from autoscaler.policy.predictive import PredictiveConfig
from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.config import SimConfig
from headroom.cli import build_parser


def default_of(cls, name: str):
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def test_the_cli_the_simulator_and_the_policy_share_their_defaults():
    flags = build_parser().parse_args(["simulate", "--trace", "t.jsonl"])
    shared = {
        "slo_ttft_s": (flags.slo_ttft, defaults.SLO_TTFT_S),
        "slo_itl_s": (flags.slo_itl, defaults.SLO_ITL_S),
        "cold_start_s": (flags.cold_start, defaults.COLD_START_S),
        "max_replicas": (flags.max_replicas, defaults.MAX_REPLICAS),
        "min_replicas": (flags.min_replicas, defaults.MIN_REPLICAS),
    }
    for name, (flag, default) in shared.items():
        assert flag == default_of(SimulateArgs, name) == default, name
        if name != "min_replicas":
            assert default_of(SimConfig, name) == default, name
        assert default_of(PredictiveConfig, name) == default, name
    assert (
        flags.scrape_interval
        == default_of(SimulateArgs, "scrape_interval_s")
        == default_of(SimConfig, "scrape_interval_s")
    )
    assert flags.profile == default_of(SimulateArgs, "profile") == defaults.PROFILE


def test_a_live_target_and_the_predictive_policy_share_their_defaults():
    """The autoscaler's YAML target and PredictiveConfig agree on the SLO, cold start, fill and the scale-down
    guards; a live target's max_replicas is deliberately lower than a simulated fleet's (GPUs cost money)."""
    from autoscaler.config import Slo, TargetConfig

    target = {name: field.default for name, field in TargetConfig.model_fields.items()}
    slo = Slo()
    assert (slo.ttft_s, slo.itl_s) == (default_of(PredictiveConfig, "slo_ttft_s"), defaults.SLO_ITL_S)
    for name in ("cold_start_s", "fill", "min_replicas", "scale_down_window_s", "cooldown_s", "rise_memory_s"):
        assert target[name] == default_of(PredictiveConfig, name), name
    assert target["max_replicas"] == defaults.TARGET_MAX_REPLICAS < defaults.MAX_REPLICAS
