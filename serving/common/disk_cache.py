"""Results that cost seconds to compute (load tables, days of synthesized arrival counts), kept on disk by a digest
of everything they depend on, in a folder passed in; written whole or not at all."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def cache_folder(environ: Mapping[str, str]) -> Path:
    """$HEADROOM_CACHE, else ~/.cache/headroom: read at the edges (the CLI, the console's settings, benchmarks)."""
    return Path(environ.get("HEADROOM_CACHE", Path.home() / ".cache" / "headroom"))


class DiskCache:
    """`cache(kind, key, compute)`: `compute()` once per picklable `key` (include a version in it when the
    computation changes). With no folder nothing is kept: every call computes."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder is not None else None

    def _path(self, kind: str, key: Any) -> Path:
        return self.folder / kind / f"{hashlib.sha256(pickle.dumps(key)).hexdigest()[:20]}.pickle"

    def get(self, kind: str, key: Any) -> Any | None:
        """What is kept for `key`, or None: nothing is computed."""
        if self.folder is None:
            return None
        path = self._path(kind, key)
        return _read(path) if path.exists() else None

    def __call__(self, kind: str, key: Any, compute: Callable[[], Any]) -> Any:
        if self.folder is None:
            return compute()
        path = self._path(kind, key)
        folder, digest = path.parent, path.stem
        if path.exists():
            return _read(path)
        folder.mkdir(parents=True, exist_ok=True)
        # processes asking for the same key at once (`--jobs`, test workers) compute it once: the rest wait
        with open(folder / f"{digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                return _read(path)
            value = compute()
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(value, f)
            os.replace(tmp, path)
            return value


def _read(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def files_digest(paths: list[Path]) -> str:
    """Content digest of input files, so an edited trace is never served from the cache."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()
