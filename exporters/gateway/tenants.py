"""Tenants: API keys (bearer tokens) from a keys file, and a capped tenant label for metrics."""

from __future__ import annotations

import hmac
from pathlib import Path

import yaml

ANONYMOUS = "anonymous"
OTHER = "other"


class KeysFileError(ValueError):
    pass


class KeyRing:
    """Bearer token -> tenant. Open mode (no keys file): every request is the tenant "anonymous"."""

    def __init__(self, keys: dict[str, str] | None):
        self.keys = keys

    @classmethod
    def from_file(cls, path: Path | None) -> "KeyRing":
        if path is None:
            return cls(None)
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except OSError as err:
            raise KeysFileError(f"keys file {path}: cannot read: {err.strerror or err}") from None
        except yaml.YAMLError as err:
            raise KeysFileError(f"keys file {path}: not valid YAML: {err}") from None
        if not isinstance(raw, dict) or not raw:
            raise KeysFileError(f"keys file {path}: expected a mapping of API key to tenant name")
        for key, tenant in raw.items():
            if not isinstance(key, str) or len(key) < 8:
                raise KeysFileError(f"keys file {path}: key {str(key)[:4]!r}...: API keys are strings of at least 8 characters")
            if not isinstance(tenant, str) or not tenant or tenant in (OTHER, ANONYMOUS):
                raise KeysFileError(f"keys file {path}: key {key[:4]!r}...: the tenant must be a name other than "
                                    f"{OTHER!r} and {ANONYMOUS!r}, got {tenant!r}")
        return cls(raw)

    @property
    def open(self) -> bool:
        return self.keys is None

    def tenant(self, authorization: str | None) -> str | None:
        """The tenant for an Authorization header, or None when the key is missing or unknown."""
        if self.keys is None:
            return ANONYMOUS
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization[7:].strip()
        for key, tenant in self.keys.items():  # constant-time per comparison: no timing hint about the keys
            if hmac.compare_digest(key.encode(), token.encode()):
                return tenant
        return None


class TenantLabels:
    """The metric label for a tenant: its name for the `cap` busiest (by requests, decayed), "other" for the rest.
    The ranking is redone every `every` requests, so the label set stays bounded however many keys send traffic."""

    def __init__(self, cap: int, every: int = 1000, decay: float = 0.5):
        self.cap, self.every, self.decay = cap, every, decay
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
        self.labelled = set(ranked[: self.cap])
        self.counts = {t: c * self.decay for t, c in self.counts.items() if c * self.decay >= 0.5 or t in self.labelled}
