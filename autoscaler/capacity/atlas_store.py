"""Capacity atlases on disk: the shipped ones beside this module (one .npz per shipped profile, built by
`python -m bench.capacity_atlas`), and those of other profiles measured on first use and kept in a cache folder."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autoscaler.capacity import atlas as grid
from autoscaler.capacity.atlas import Atlas
from serving.engine.profile import Profile

SHIPPED_DIR = Path(__file__).parent / "atlases"
BUILDER_VERSION = 2  # raise when the measurement changes: every atlas then counts as stale


def atlas_digest(profile: Profile) -> str:
    """What an atlas's numbers depend on besides the engine code: the resolved profile, the grids, the builder."""
    grids = [
        grid.PROMPT_MEANS,
        grid.OUTPUT_MEANS,
        grid.FLEET_SIZES,
        grid.RATE_FRACTIONS,
        grid.TTFT_THRESHOLDS_S,
        grid.ITL_THRESHOLDS_S,
        grid.LEVELS,
        BUILDER_VERSION,
    ]
    text = json.dumps([profile.model_dump(mode="json", exclude={"name", "sources"}), grids], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_atlas(atlas: Atlas, path: Path) -> None:
    """Written whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        profile=atlas.profile,
        digest=atlas.digest,
        saturated_rps=atlas.saturated_rps,
        attainment=atlas.attainment.astype(np.float32),
        ttft_quantiles=atlas.ttft_quantiles.astype(np.float32),
        itl_quantiles=atlas.itl_quantiles.astype(np.float32),
    )
    os.replace(tmp, path)


def read_atlas(path: Path) -> Atlas:
    with np.load(path) as data:
        return Atlas(
            str(data["profile"]),
            str(data["digest"]),
            data["saturated_rps"],
            data["attainment"],
            data["ttft_quantiles"],
            data["itl_quantiles"],
        )


def load_atlas(profile: Profile, cache_dir: Path, build: Callable[[Profile, str], Atlas]) -> tuple[Atlas, str]:
    """The atlas for `profile` and where it came from ("shipped", "cache" or "measured"): a shipped or cached one
    whose digest matches, else `build(profile, digest)` (minutes), kept in `cache_dir` for the next time."""
    digest = atlas_digest(profile)
    for source, path in (("shipped", SHIPPED_DIR / f"{profile.name}.npz"), ("cache", cache_dir / f"{digest}.npz")):
        if path.exists():
            atlas = read_atlas(path)
            if atlas.digest == digest:
                return atlas, source
    atlas = build(profile, digest)
    save_atlas(atlas, cache_dir / f"{digest}.npz")
    return atlas, "measured"
