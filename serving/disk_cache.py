"""Results that cost seconds to compute (load tables, days of synthesized arrival counts), kept on disk by a digest
of everything they depend on, under $HEADROOM_CACHE or ~/.cache/headroom; written whole or not at all."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_folder() -> Path:
    return Path(os.environ.get("HEADROOM_CACHE", Path.home() / ".cache" / "headroom"))


def cached(kind: str, key: Any, compute: Callable[[], Any]) -> Any:
    """`compute()` once per picklable `key` (include a version in it when the computation changes)."""
    digest = hashlib.sha256(pickle.dumps(key)).hexdigest()[:20]
    folder = cache_folder() / kind
    path = folder / f"{digest}.pickle"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    value = compute()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(value, f)
    os.replace(tmp, path)
    return value


def files_digest(paths: list[Path]) -> str:
    """Content digest of input files, so an edited trace is never served from the cache."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()
