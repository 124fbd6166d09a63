"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the holder renews
renewTime; anyone may take the lease once it has not been renewed for leaseDurationSeconds; every write carries the
resourceVersion it read, so of two candidates racing for an expired lease exactly one wins (the other gets 409)."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger("headroom.actuator.lease")


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str = "headroom-autoscaler"
    duration_s: int = 15  # a leader that has not renewed for this long has lost the lease


class LeaderElector:
    """`try_acquire_or_renew(now)` once per loop iteration, before actuating; True while this identity leads."""

    def __init__(self, api: client.ApiClient, config: LeaseConfig, identity: str):
        self.api = client.CoordinationV1Api(api)
        self.config, self.identity = config, identity
        self.leading = False

    def _body(self, now: datetime.datetime, transitions: int, acquired: datetime.datetime, version: str | None):
        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.config.name, namespace=self.config.namespace, resource_version=version
            ),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=self.config.duration_s,
                acquire_time=acquired,
                renew_time=now,
                lease_transitions=transitions,
            ),
        )

    def try_acquire_or_renew(self, now: datetime.datetime | None = None) -> bool:
        now = now or datetime.datetime.now(datetime.UTC)
        cfg = self.config
        try:
            lease = self.api.read_namespaced_lease(cfg.name, cfg.namespace)
        except ApiException as err:
            if err.status != 404:
                return self._lost(f"cannot read the lease: HTTP {err.status}")
            try:
                self.api.create_namespaced_lease(cfg.namespace, self._body(now, 0, now, None))
                return self._won("created the lease")
            except ApiException as create_err:
                return self._lost(f"another candidate created the lease first (HTTP {create_err.status})")
        spec = lease.spec
        holder = spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        duration = spec.lease_duration_seconds or cfg.duration_s
        expired = renewed is None or (now - _aware(renewed)).total_seconds() > duration
        if holder != self.identity and not expired:
            return self._lost(f"held by {holder}")
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = _aware(spec.acquire_time) if holder == self.identity and spec.acquire_time else now
        try:
            self.api.replace_namespaced_lease(
                cfg.name, cfg.namespace, self._body(now, transitions, acquired, lease.metadata.resource_version)
            )
        except ApiException as err:
            return self._lost(f"lost the race for the lease (HTTP {err.status})")
        return self._won("renewed" if holder == self.identity else f"took over from {holder}")

    def _won(self, why: str) -> bool:
        if not self.leading:
            log.info("%s leads: %s", self.identity, why)
        self.leading = True
        return True

    def _lost(self, why: str) -> bool:
        if self.leading:
            log.warning("%s stops leading: %s", self.identity, why)
        self.leading = False
        return False


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
