"""Tenants: API keys (bearer tokens) from a keys file, and a capped tenant label for metrics."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import yaml

ANONYMOUS = "anonymous"
OTHER = "other"


class KeysFileError(ValueError):
    """What is wrong with a keys file; it names entries by line, never by key, so no key reaches a log."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class _KeysLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _KeysLoader, node: yaml.MappingNode) -> dict:
    """Each key -> (its value, its line)."""
    found: dict = {}
    for key_node, value_node in node.value:
        key, line = loader.construct_object(key_node), key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float)):
            raise KeysFileError(f"line {line}: API keys are strings")
        if key in found:
            raise KeysFileError(f"line {line}: this API key is already given on line {found[key][1]}")
        found[key] = (loader.construct_object(value_node), line)
    return found


_KeysLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _read_keys(path: Path) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise KeysFileError(f"keys file {path}: cannot read: {err.strerror or err}") from None
    try:
        raw = yaml.load(text, Loader=_KeysLoader)
    except KeysFileError as err:
        raise KeysFileError(f"keys file {path}: {err}") from None
    except yaml.YAMLError as err:  # its message quotes the file's text, keys included: only say where
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise KeysFileError(f"keys file {path}: not valid YAML{where}") from None
    if not isinstance(raw, dict) or not raw:
        raise KeysFileError(f"keys file {path}: expected a mapping of API key to tenant name")
    return raw


class KeyRing:
    """Bearer token -> tenant, looked up by the token's SHA-256 (one hash, one dict lookup, whatever the number of
    keys). Open mode (no keys file): every request is the tenant "anonymous"."""

    def __init__(self, keys: dict[str, str] | None):
        self.by_digest = None if keys is None else {_digest(k): t for k, t in keys.items()}

    @classmethod
    def from_file(cls, path: Path | None) -> KeyRing:
        if path is None:
            return cls(None)
        keys = {}
        for key, (tenant, line) in _read_keys(path).items():
            if not isinstance(key, str) or len(key) < 8 or any(c.isspace() for c in key):
                raise KeysFileError(
                    f"keys file {path}: line {line}: API keys are strings of at least 8 characters with no spaces"
                )
            if not isinstance(tenant, str) or not tenant or tenant in (OTHER, ANONYMOUS):
                raise KeysFileError(
                    f"keys file {path}: line {line}: the tenant must be a name other than "
                    f"{OTHER!r} and {ANONYMOUS!r}, got {tenant!r}"
                )
            keys[key] = tenant
        return cls(keys)

    @property
    def open(self) -> bool:
        return self.by_digest is None

    def tenant(self, authorization: str | None) -> str | None:
        """The tenant for an Authorization header, or None when the key is missing or unknown."""
        if self.by_digest is None:
            return ANONYMOUS
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        return self.by_digest.get(_digest(authorization[7:].strip()))


class TenantLabels:
    """The metric label for a tenant: its name for the `cap` busiest (by requests, decayed), "other" for the rest.
    The ranking is redone every `every` requests, so the label set stays bounded however many keys send traffic."""

    def __init__(
        self, cap: int, every: int = 1000, decay: float = 0.5, on_dropped: Callable[[str], None] = lambda t: None
    ):
        self.cap, self.every, self.decay, self.on_dropped = cap, every, decay, on_dropped
        self.counts: dict[str, float] = {}
        self.labelled: set[str] = set()
        self._since = 0

    def label(self, tenant: str) -> str:
        self.counts[tenant] = self.counts.get(tenant, 0.0) + 1.0
        self._since += 1
        if tenant not in self.labelled and len(self.labelled) < self.cap:
            self.labelled.add(tenant)
        elif self._since >= self.every:
            self._rerank()
        return tenant if tenant in self.labelled else OTHER

    def _rerank(self) -> None:
        self._since = 0
        ranked = sorted(self.counts, key=lambda t: (-self.counts[t], t))
        dropped, self.labelled = self.labelled - set(ranked[: self.cap]), set(ranked[: self.cap])
        for tenant in sorted(dropped):
            self.on_dropped(tenant)
        self.counts = {t: c * self.decay for t, c in self.counts.items() if c * self.decay >= 0.5 or t in self.labelled}
