"""Shipped replica profiles (model x GPU x parallelism) as data files, their loader and GPU prices."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from serving.engine.profile import Efficiency, GpuSpec, ModelSpec, Profile

PROFILE_DIR = Path(__file__).parent
_TABLES = {"models.yaml", "gpus.yaml", "efficiency.yaml"}


from serving.profiles.errors import ProfileError

__all__ = ["ProfileError", "build_profile", "efficiency_set", "gpu_price_per_hour", "list_profiles", "load_profile"]


def _table(name: str) -> dict:
    with open(PROFILE_DIR / name) as f:
        return yaml.safe_load(f)


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if p.name not in _TABLES)


def efficiency_set(name: str) -> Efficiency:
    table = _table("efficiency.yaml")
    if name not in table:
        raise ProfileError(f"unknown efficiency set {name!r}; known: {', '.join(sorted(table))}")
    return Efficiency.model_validate(table[name])


def build_profile(data: dict, origin: str) -> Profile:
    """Resolve a profile document's references (model, gpu, efficiency) and validate it."""
    data = dict(data)
    models, gpus = _table("models.yaml"), _table("gpus.yaml")
    try:
        model_key, gpu_key, eff_key = data.pop("model"), data.pop("gpu"), data.pop("efficiency")
    except KeyError as missing:
        raise ProfileError(f"{origin}: missing key {missing}") from None
    if not isinstance(model_key, dict) and model_key not in models:
        raise ProfileError(f"{origin}: unknown model {model_key!r}; known: {', '.join(sorted(models))}")
    if gpu_key not in gpus:
        raise ProfileError(f"{origin}: unknown gpu {gpu_key!r}; known: {', '.join(sorted(gpus))}")
    # a model is a name in models.yaml, or its figures inline (`headroom profiles add` writes them)
    model = {**(model_key if isinstance(model_key, dict) else models[model_key]), **data.pop("model_overrides", {})}
    # and its GPU the table's figures, or some of them replaced (a power curve fitted with the profile's efficiencies)
    gpu = {"name": gpu_key, **gpus[gpu_key], **data.pop("gpu_overrides", {})}
    try:
        return Profile(
            model=ModelSpec.model_validate(model),
            gpu=GpuSpec.model_validate(gpu),
            efficiency=efficiency_set(eff_key),
            **data,
        )
    except ValidationError as err:
        raise ProfileError(f"{origin}: {err}") from None


@cache
def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile YAML file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ProfileError(f"unknown profile {name_or_path!r}; shipped: {', '.join(list_profiles())}")
    elif not path.exists():
        raise ProfileError(f"profile file {name_or_path} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping of profile fields")
    return build_profile(data, str(path))


@cache
def gpu_price_per_hour(gpu: str) -> float:
    """Lowest on-demand USD per GPU-hour listed for this GPU (a default users override)."""
    with open(PROFILE_DIR / "gpu_prices.csv") as f:
        prices = [float(r["usd_per_gpu_hour_on_demand"]) for r in csv.DictReader(f) if r["gpu"] == gpu]
    if not prices:
        raise ProfileError(f"no price listed for GPU {gpu!r} in gpu_prices.csv")
    return min(prices)
