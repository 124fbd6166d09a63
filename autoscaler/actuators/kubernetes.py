"""Kubernetes actuator on the official client: read and patch the scale subresource of a Deployment or StatefulSet
(with the resourceVersion it read, so a concurrent writer makes the patch fail with 409: re-read and retry), back off
on 429 (honouring Retry-After) and 5xx, and leave a trail: an annotation on the workload and an Event per change."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.sources.prometheus import FleetCounts

log = logging.getLogger("headroom.actuator.kubernetes")
REASON_ANNOTATION = "headroom.dev/last-scale-reason"
KINDS = ("Deployment", "StatefulSet")


class ActuationError(RuntimeError):
    pass


@dataclass(frozen=True)
class WorkloadRef:
    namespace: str
    name: str
    kind: str = "Deployment"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class Backoff:
    attempts: int = 6  # tries per call, conflicts and throttling included
    first_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        base = min(self.max_s, self.first_s * 2**attempt)
        return max(base, retry_after or 0.0)


class KubernetesActuator:
    """Scales one workload. `sleep` is injectable so tests do not wait for real backoffs."""

    def __init__(
        self,
        api: client.ApiClient,
        ref: WorkloadRef,
        component: str = "headroom-autoscaler",
        instance: str = "",
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.apps, self.core = client.AppsV1Api(api), client.CoreV1Api(api)
        self.ref, self.component, self.instance, self.backoff, self.sleep = ref, component, instance, backoff, sleep

    # ---- calls with retry ---------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, conflict_retry: bool = False):
        """`fn()` with backoff on 429 and 5xx; on 409 the caller's `fn` re-reads (conflict_retry) or it raises."""
        for attempt in range(self.backoff.attempts):
            try:
                return fn()
            except ApiException as err:
                retry_after = _retry_after(err)
                if err.status == 409 and conflict_retry:
                    log.info("%s: conflict (someone else changed %s), re-reading", what, self.ref.name)
                    continue
                if err.status == 429 or err.status >= 500:
                    delay = self.backoff.delay(attempt, retry_after)
                    log.warning("%s: HTTP %s, retrying in %.1f s", what, err.status, delay)
                    self.sleep(delay)
                    continue
                raise ActuationError(
                    f"{what} {self.ref.kind}/{self.ref.namespace}/{self.ref.name}: HTTP {err.status} "
                    f"{err.reason}: {_message(err)}"
                ) from None
        raise ActuationError(
            f"{what} {self.ref.kind}/{self.ref.namespace}/{self.ref.name}: gave up after "
            f"{self.backoff.attempts} attempts"
        )

    def _read_scale(self):
        read = (
            self.apps.read_namespaced_deployment_scale
            if self.ref.kind == "Deployment"
            else self.apps.read_namespaced_stateful_set_scale
        )
        return read(self.ref.name, self.ref.namespace)

    def _read_workload(self):
        read = (
            self.apps.read_namespaced_deployment
            if self.ref.kind == "Deployment"
            else self.apps.read_namespaced_stateful_set
        )
        return read(self.ref.name, self.ref.namespace)

    # ---- what the loop uses ---------------------------------------------------------------------
    def counts(self) -> FleetCounts:
        """spec.replicas and how many of them are ready (the rest are starting, or stopping when above spec)."""
        workload = self._call("read", self._read_workload)
        desired = int(workload.spec.replicas or 0)
        status = workload.status
        ready = int((status.ready_replicas if status else 0) or 0)
        current = int((status.replicas if status else 0) or 0)
        return FleetCounts(
            desired=desired,
            ready=min(ready, desired) if desired else 0,
            starting=max(0, desired - ready),
            stopping=max(0, current - desired),
        )

    def scale(self, desired: int, reasons: tuple[str, ...] = ()) -> bool:
        """Set spec.replicas to `desired` (False if it already was); annotate the workload and record an Event."""
        if desired < 0:
            raise ValueError(f"replicas must be >= 0, got {desired}")
        patch = (
            self.apps.patch_namespaced_deployment_scale
            if self.ref.kind == "Deployment"
            else self.apps.patch_namespaced_stateful_set_scale
        )
        before = {}

        def attempt():
            scale = self._read_scale()
            before["replicas"] = int(scale.spec.replicas or 0)
            if before["replicas"] == desired:
                return None
            body = {"metadata": {"resourceVersion": scale.metadata.resource_version}, "spec": {"replicas": desired}}
            return patch(self.ref.name, self.ref.namespace, body)

        result = self._call("scale", attempt, conflict_retry=True)
        if result is None:
            return False
        reason = "; ".join(reasons) or "no reason given"
        message = f"scaled {self.ref.kind.lower()} {self.ref.name} from {before['replicas']} to {desired}: {reason}"
        log.info(message)
        self._annotate(message)
        self._event(message)
        return True

    def _annotate(self, message: str) -> None:
        patch = (
            self.apps.patch_namespaced_deployment
            if self.ref.kind == "Deployment"
            else self.apps.patch_namespaced_stateful_set
        )
        body = {"metadata": {"annotations": {REASON_ANNOTATION: message[:1000]}}}
        try:
            self._call("annotate", lambda: patch(self.ref.name, self.ref.namespace, body))
        except ActuationError as err:  # the scale itself happened: a missing trail is logged, not fatal
            log.warning("could not annotate: %s", err)

    def _event(self, message: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{self.ref.name}.headroom-", namespace=self.ref.namespace),
            involved_object=client.V1ObjectReference(
                kind=self.ref.kind, name=self.ref.name, namespace=self.ref.namespace, api_version="apps/v1"
            ),
            reason="HeadroomScaled",
            message=message[:1000],
            type="Normal",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=self.component),
            reporting_component=self.component,
            reporting_instance=self.instance or self.component,
        )
        try:
            self._call("event", lambda: self.core.create_namespaced_event(self.ref.namespace, event))
        except ActuationError as err:
            log.warning("could not record an event: %s", err)


def _retry_after(err: ApiException) -> float | None:
    headers = err.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(err: ApiException) -> str:
    import json

    try:
        return json.loads(err.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        return str(err.body or "")[:200]
