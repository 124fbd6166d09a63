"""`python -m bench.capacity_atlas [PROFILE...]`: measure the shipped profiles' capacity atlases on the engine model
and write them beside autoscaler.capacity.atlas_store (minutes per profile; one process per profile)."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor

from autoscaler.capacity.atlas_build import build_atlas
from autoscaler.capacity.atlas_store import SHIPPED_DIR, atlas_digest, save_atlas
from serving.profiles import list_profiles, load_profile


def build_one(name: str) -> str:
    started = time.perf_counter()
    profile = load_profile(name)
    atlas = build_atlas(profile, name, atlas_digest(profile), progress=lambda line: print(line, flush=True))
    save_atlas(atlas, SHIPPED_DIR / f"{name}.npz")
    return f"{name}: {time.perf_counter() - started:.0f} s"


def main(argv: list[str]) -> int:
    names = argv or list_profiles()
    with ProcessPoolExecutor(max_workers=2) as pool:
        for line in pool.map(build_one, names):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
