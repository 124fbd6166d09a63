"""The shipped atlases: one per shipped profile, current (their digest and a re-measured rate agree), and the cache
that measures an atlas once for a profile that ships none."""

import numpy as np
import pytest

from autoscaler.capacity import atlas as grid
from autoscaler.capacity.atlas_build import attainment_at, cell_lengths
from autoscaler.capacity.atlas_store import (
    SHIPPED_DIR,
    atlas_digest,
    load_atlas,
    read_atlas,
    save_atlas,
)
from serving.profiles import list_profiles, load_profile
from tests.autoscaler.capacity.test_atlas import cliff_atlas


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_has_a_current_atlas(name):
    path = SHIPPED_DIR / f"{name}.npz"
    assert path.exists(), f"no atlas for {name}: run `python -m bench.capacity_atlas {name}`"
    assert read_atlas(path).digest == atlas_digest(load_profile(name)), (
        f"{name}'s atlas is stale (profile, grids or builder changed): run `python -m bench.capacity_atlas {name}`"
    )


def test_a_shipped_rate_measures_again_to_the_same_figures():
    """The engine behind the atlas has not changed since it was built: one rate of one cell, measured again."""
    name, (i, j), k, r = "llama-3.1-70b-h200-tp2", (2, 1), 0, 6
    profile, atlas = load_profile(name), read_atlas(SHIPPED_DIR / f"{name}.npz")
    prompts, outputs = cell_lengths(profile, grid.PROMPT_MEANS[i], grid.OUTPUT_MEANS[j], seed=0)
    rate = grid.RATE_FRACTIONS[r] * atlas.saturated_rps[i, j]
    cube, ttft_q, _ = attainment_at(
        profile, prompts, outputs, rate, 0, 180.0 if grid.RATE_FRACTIONS[r] >= 0.8 else 90.0
    )
    np.testing.assert_allclose(
        cube,
        atlas.attainment[i, j, k, r],
        atol=1e-6,
        err_msg=f"the engine changed since {name}'s atlas was built: rebuild the atlases",
    )
    np.testing.assert_allclose(ttft_q, atlas.ttft_quantiles[i, j, k, r], rtol=1e-5)


def test_a_profile_without_a_shipped_atlas_is_measured_once_then_cached(tmp_path):
    profile = load_profile("llama-3.1-8b-h100").model_copy(update={"name": "custom"})
    built = []

    def build(p, digest):
        built.append(digest)
        a = cliff_atlas(0.5)
        return type(a)(p.name, digest, a.saturated_rps, a.attainment, a.ttft_quantiles, a.itl_quantiles)

    first, source = load_atlas(profile, tmp_path, build)
    assert source == "measured" and built == [atlas_digest(profile)]
    again, source = load_atlas(profile, tmp_path, build)
    assert source == "cache" and len(built) == 1
    np.testing.assert_array_equal(again.attainment, first.attainment.astype(np.float32))
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_a_written_atlas_reads_back(tmp_path):
    atlas = cliff_atlas(0.3)
    save_atlas(atlas, tmp_path / "a.npz")
    back = read_atlas(tmp_path / "a.npz")
    assert back.profile == atlas.profile and back.digest == atlas.digest
    np.testing.assert_allclose(back.itl_quantiles, atlas.itl_quantiles, rtol=1e-6)
