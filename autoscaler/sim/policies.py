"""Policy specs on the command line: predictive[:FILL], static:N, hpa:METRIC=TARGET, keda[:THRESHOLD], kpa[:TARGET],
oracle[:CAPACITY_FACTOR[@WINDOW_S]], or a user's own class as package.module:Name (constructed with no arguments)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from autoscaler import defaults
from autoscaler.policy.base import Policy
from autoscaler.policy.predictive import Predictive, PredictiveConfig
from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.baselines.hpa import Hpa, HpaConfig
from autoscaler.sim.baselines.keda import Keda
from autoscaler.sim.baselines.kpa import Kpa
from autoscaler.sim.baselines.oracle import FutureArrivals, Oracle
from autoscaler.sim.baselines.static import Static
from autoscaler.sim.config import SimConfig


class PolicySpecError(ValueError):
    pass


@dataclass
class PolicyContext:
    """What some policies need beyond their spec: bounds, and for the oracle the future."""

    min_replicas: int = defaults.MIN_REPLICAS
    max_replicas: int = defaults.MAX_REPLICAS
    oracle_factory: Callable[[float, float], Policy] | None = None  # takes the capacity factor and the burst window
    predictive_factory: Callable[[float], Policy] | None = None  # takes the share of SLO capacity to plan for


def _number(spec: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PolicySpecError(f"policy {spec!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise PolicySpecError(f"policy {spec!r}: {text!r} is not a finite number")
    return value


def _positive(spec: str, text: str) -> float:
    value = _number(spec, text)
    if value <= 0:
        raise PolicySpecError(f"policy {spec!r}: the target must be above 0, got {text}")
    return value


def parse_policy(spec: str, ctx: PolicyContext) -> Policy:
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    bounds = {"min_replicas": ctx.min_replicas, "max_replicas": ctx.max_replicas}
    if kind == "static":
        count = _number(spec, arg) if arg else None
        if count is None or count < 0 or count != int(count):
            raise PolicySpecError(f"policy {spec!r}: static needs a whole replica count, as static:4")
        return Static(int(count))
    if kind == "hpa":
        metric, _, target = (arg or "gpu_util=70").partition("=")
        try:
            return Hpa(HpaConfig(metric=metric, target=_positive(spec, target or "70"), **bounds))
        except ValueError as err:
            raise PolicySpecError(f"policy {spec!r}: {err}") from None
    if kind == "keda":
        return Keda(threshold=_positive(spec, arg) if arg else 5.0, **bounds)
    if kind == "kpa":
        return Kpa(target=_positive(spec, arg) if arg else 70.0, **bounds)
    if kind == "predictive":
        if ctx.predictive_factory is None:
            raise PolicySpecError(
                "policy 'predictive' needs the replica capacity at the SLO (the engine profile and lengths)"
            )
        fill = _number(spec, arg) if arg else 0.9
        if not 0 < fill <= 1:
            raise PolicySpecError(f"policy {spec!r}: the share of capacity to plan for must be in (0, 1]")
        return ctx.predictive_factory(fill)
    if kind == "oracle":
        if ctx.oracle_factory is None:
            raise PolicySpecError("policy 'oracle' needs the workload (only the simulator can run it)")
        factor, _, window = arg.partition("@")
        derate = _number(spec, factor) if factor else 1.0
        window_s = _number(spec, window.removesuffix("s")) if window else 30.0
        if not 0 < derate <= 1:
            raise PolicySpecError(f"policy {spec!r}: the oracle's capacity factor must be in (0, 1]")
        if window_s <= 0:
            raise PolicySpecError(f"policy {spec!r}: the oracle's burst window must be positive seconds")
        return ctx.oracle_factory(derate, window_s)
    if "." in kind and arg:
        return load_user_policy(spec)
    raise PolicySpecError(
        f"unknown policy {spec!r}; use predictive[:FILL], static:N, hpa:METRIC=TARGET, keda[:N], kpa[:N], oracle, "
        "or package.module:ClassName"
    )


def load_user_policy(spec: str) -> Policy:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PolicySpecError(f"policy {spec!r}: cannot import {module_name}: {err}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise PolicySpecError(f"policy {spec!r}: {module_name} has no attribute {attr!r}")
    policy = factory()
    missing = [m for m in ("name", "interval_s", "initial_state", "decide") if not hasattr(policy, m)]
    if missing:
        raise PolicySpecError(f"policy {spec!r}: the object lacks {', '.join(missing)} (see autoscaler/policy/base.py)")
    return policy


def policy_context(
    args: SimulateArgs,
    config: SimConfig,
    future: FutureArrivals | None = None,
    capacity: Callable[[], float] | None = None,
) -> PolicyContext:
    """Bounds for every policy; with the future arrivals and the replica capacity at the SLO, the oracle too."""
    oracle = _oracle_factory(args, config, future, capacity) if future is not None and capacity is not None else None
    predictive = _predictive_factory(args, config, capacity) if capacity is not None else None
    return PolicyContext(
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        oracle_factory=oracle,
        predictive_factory=predictive,
    )


def _oracle_factory(args: SimulateArgs, config: SimConfig, future: FutureArrivals, capacity: Callable[[], float]):
    def oracle(derate: float, window_s: float = 30.0) -> Oracle:
        name = (
            "oracle"
            + (f":{derate:g}" if derate != 1.0 or window_s != 30.0 else "")
            + (f"@{window_s:g}s" if window_s != 30.0 else "")
        )
        return Oracle(
            future,
            capacity() * derate,
            config.cold_start_s,
            window_s=window_s,
            min_replicas=args.min_replicas,
            name=name,
        )

    return oracle


def _predictive_factory(args: SimulateArgs, config: SimConfig, capacity: Callable[[], float]):
    def predictive(fill: float) -> Predictive:
        lag = config.scrape_interval_s + config.rate_window_s / 2
        return Predictive(
            PredictiveConfig(
                capacity_rps=capacity(),
                slo_ttft_s=config.slo_ttft_s,
                slo_itl_s=config.slo_itl_s,
                cold_start_s=config.cold_start_s,
                observation_lag_s=lag,
                fill=fill,
                min_replicas=args.min_replicas,
                max_replicas=args.max_replicas,
            ),
            name="predictive" + (f":{fill:g}" if fill != 0.9 else ""),
        )

    return predictive
