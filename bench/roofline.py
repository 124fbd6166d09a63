"""Roofline check: over a grid of batches for every shipped profile, no predicted step is below the floor."""

from __future__ import annotations

from serving.engine.steptime import BatchShape, StepTimeModel
from serving.profiles import list_profiles, load_profile

DECODES = (0, 1, 2, 8, 32, 128, 512, 1024)
CONTEXTS = (16, 512, 4096, 32768)
PREFILLS = (0, 1, 128, 2048, 8192, 16384)


def grid_rows() -> list[dict]:
    rows = []
    for name in list_profiles():
        model = StepTimeModel(load_profile(name))
        checked = below = 0
        ratios = []
        for decodes in DECODES:
            for context in CONTEXTS:
                for prefill in PREFILLS:
                    shape = BatchShape.of([(1, context)] * decodes + ([(prefill, context)] if prefill else []))
                    if shape.num_seqs == 0:
                        continue
                    t = model.timing(shape)
                    checked += 1
                    below += t.duration_s < t.floor_s
                    ratios.append(t.duration_s / t.floor_s)
        rows.append(
            {
                "profile": name,
                "batches": checked,
                "below_floor": below,
                "min_ratio": min(ratios),
                "median_ratio": sorted(ratios)[len(ratios) // 2],
                "max_ratio": max(ratios),
            }
        )
    return rows
