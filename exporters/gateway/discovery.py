"""Where the backends are (a static list, a Prometheus file_sd file, a Kubernetes Service's EndpointSlices) and
whether they serve: active health checks that eject failing backends and learn the models each one serves."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import yaml

from exporters.gateway.config import Backends, check_address

log = logging.getLogger("headroom.gateway.discovery")


class DiscoveryError(ValueError):
    pass


def parse_file_sd(text: str, where: str) -> list[str]:
    """host:port targets of a Prometheus file_sd document (JSON or YAML: a list of {targets: [...], labels: {...}})."""
    try:
        groups = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as err:
        raise DiscoveryError(f"{where}: not valid JSON or YAML: {err}") from None
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise DiscoveryError(f"{where}: expected a list of target groups, got {type(groups).__name__}")
    targets = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("targets"), list):
            raise DiscoveryError(f"{where}: group {i}: expected a mapping with a list of targets")
        for target in group["targets"]:
            try:
                targets.append(check_address(target if isinstance(target, str) else repr(target)))
            except ValueError as err:
                raise DiscoveryError(f"{where}: group {i}: {err}") from None
    return targets


def endpoint_slice_targets(slices, port_name: str | None) -> list[str]:
    """Ready endpoints' address:port from discovery.k8s.io/v1 EndpointSlices (kubernetes client objects)."""
    targets = []
    for item in slices:
        ports = item.ports or []
        port = next((p.port for p in ports if port_name is None or p.name == port_name), None)
        if port is None:
            continue
        for endpoint in item.endpoints or []:
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            targets += [f"{address}:{port}" for address in endpoint.addresses or []]
    return sorted(set(targets))


class Discovery:
    """Polls every configured source each health interval; the union of their targets goes to `on_targets`."""

    def __init__(self, config: Backends, on_targets):
        self.config, self.on_targets = config, on_targets
        self._file_targets: list[str] = []
        self._file_mtime: float | None = None
        self._file_missing = False
        self._k8s_targets: list[str] = []
        self._k8s_api = None
        self._last: list[str] | None = None

    def _read_file_sd(self) -> None:
        path = Path(self.config.file_sd)
        try:
            mtime = path.stat().st_mtime
        except OSError as err:
            if not self._file_missing:  # said once, not at every poll
                log.warning(
                    "file_sd %s: cannot read (%s); keeping %d targets", path, err.strerror, len(self._file_targets)
                )
            self._file_missing = True
            return
        self._file_missing = False
        if mtime == self._file_mtime:
            return
        self._file_mtime = mtime
        try:
            self._file_targets = parse_file_sd(path.read_text(), str(path))
        except (DiscoveryError, OSError) as err:
            log.warning("%s; keeping %d targets", err, len(self._file_targets))

    def _read_kubernetes(self) -> None:
        if self._k8s_api is None:
            from kubernetes import client
            from kubernetes import config as kube_config

            try:
                kube_config.load_incluster_config()
            except kube_config.ConfigException:
                kube_config.load_kube_config()
            self._k8s_api = client.DiscoveryV1Api()
        namespace, name = self.config.kubernetes_service.split("/")
        slices = self._k8s_api.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={name}"
        )
        self._k8s_targets = endpoint_slice_targets(slices.items, self.config.kubernetes_port)

    async def poll_once(self) -> None:
        if self.config.file_sd is not None:
            self._read_file_sd()
        if self.config.kubernetes_service is not None:
            try:
                await asyncio.to_thread(self._read_kubernetes)
            except Exception as err:  # the API server away: keep routing to what was known  # noqa: BLE001
                log.warning(
                    "EndpointSlices of %s: %s; keeping %d targets",
                    self.config.kubernetes_service,
                    err,
                    len(self._k8s_targets),
                )
        targets = sorted(set(self.config.static) | set(self._file_targets) | set(self._k8s_targets))
        if targets != self._last:
            self._last = targets
            self.on_targets(targets)

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.config.health_interval_s)


class HealthChecker:
    """GETs each backend's health path every interval (all at once); the answer's model ids, when it lists any
    (vLLM's /v1/models), become the models that backend is routed for."""

    def __init__(self, pool, config: Backends, timeout_s: float = 2.0):
        self.pool, self.config = pool, config
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def check(self, address: str) -> tuple[bool, frozenset[str] | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(f"http://{address}{self.config.health_path}") as answer:
                if answer.status != 200:
                    return False, None
                body = await answer.read()
        except (TimeoutError, aiohttp.ClientError):
            return False, None
        try:
            data = json.loads(body).get("data")
            models = frozenset(m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str))
        except (ValueError, AttributeError, TypeError):
            return True, None
        return True, models or None

    async def check_all(self) -> None:
        addresses = [b.address for b in self.pool.backends.values() if b.discovered]
        results = await asyncio.gather(*(self.check(a) for a in addresses))
        for address, (ok, models) in zip(addresses, results):
            if self.pool.record_health(address, ok, models, self.config.unhealthy_after, self.config.healthy_after):
                log.info("backend %s %s", address, "readmitted" if ok else "ejected")

    async def run(self, checked: bool = False) -> None:
        """Check every backend each interval; `checked`: the first round was just run (wait an interval first)."""
        while True:
            if not checked:
                await self.check_all()
            checked = False
            await asyncio.sleep(self.config.health_interval_s)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
