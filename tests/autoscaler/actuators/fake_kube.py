"""A Kubernetes API server for tests, on loopback: the calls the actuator and the leader election use (scale
subresource GET and PATCH with resourceVersion, workload GET and PATCH, Event create, Lease get, create and
replace), with bodies shaped like the real API's (Status objects for errors), and faults to inject."""

from __future__ import annotations

import copy
import json
import re
import threading
import time

from kubernetes import client

from tests.helpers import LoopbackHttpServer, QuietHandler


def status(code: int, reason: str, message: str, **details) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


class FakeKube:
    def __init__(self, namespace: str = "llm", name: str = "vllm", replicas: int = 2, ready: int | None = None):
        self.namespace, self.lock = namespace, threading.Lock()
        self.version = 100
        self.workloads = {
            name: {
                "replicas": replicas,
                "ready": replicas if ready is None else ready,
                "annotations": {},
                "resourceVersion": self._next(),
            }
        }
        self.events: list[dict] = []
        self.leases: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.faults: list[tuple[str, str, int, dict]] = []  # (method, path regex, status, headers): one use each
        self.before_patch = None  # called between a scale read and its patch (to play a concurrent writer)
        self.http = LoopbackHttpServer(self._handler())

    def _next(self) -> str:
        self.version += 1
        return str(self.version)

    @property
    def url(self) -> str:
        return self.http.url

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration(host=self.url)
        return client.ApiClient(configuration)

    def __enter__(self):
        self.http.start()
        return self

    def __exit__(self, *exc):
        self.http.close()

    def fail_next(self, method: str, path_regex: str, code: int, headers: dict | None = None) -> None:
        self.faults.append((method, path_regex, code, headers or {}))

    def concurrent_write(self, name: str, replicas: int) -> None:
        """Another writer changes the workload (its resourceVersion moves on)."""
        with self.lock:
            self.workloads[name]["replicas"] = replicas
            self.workloads[name]["resourceVersion"] = self._next()

    # ---- bodies ------------------------------------------------------------------------
    def _meta(self, name: str, w: dict) -> dict:
        return {
            "name": name,
            "namespace": self.namespace,
            "uid": f"uid-{name}",
            "resourceVersion": w["resourceVersion"],
            "creationTimestamp": "2026-11-30T00:00:00Z",
            "annotations": dict(w["annotations"]),
        }

    def _scale(self, name: str, w: dict) -> dict:
        meta = self._meta(name, w)
        meta.pop("annotations")
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": meta,
            "spec": {"replicas": w["replicas"]},
            "status": {"replicas": w["replicas"], "selector": f"app={name}"},
        }

    def _workload(self, kind: str, name: str, w: dict) -> dict:
        return {
            "kind": kind,
            "apiVersion": "apps/v1",
            "metadata": self._meta(name, w),
            "spec": {
                "replicas": w["replicas"],
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "vllm", "image": "vllm"}]},
                },
            },
            "status": {
                "replicas": w["replicas"],
                "readyReplicas": min(w["ready"], w["replicas"]),
                "availableReplicas": min(w["ready"], w["replicas"]),
                "observedGeneration": 1,
            },
        }

    def _handler(self):
        fake = self

        class Handler(QuietHandler):
            def _send(self, code: int, body: dict, headers: dict | None = None):
                self.reply(code, json.dumps(body).encode(), headers=headers)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _route(self, method: str):
                path = self.path.split("?")[0]
                fake.calls.append((method, path))
                for i, (m, pattern, code, headers) in enumerate(fake.faults):
                    if m == method and re.search(pattern, path):
                        del fake.faults[i]
                        reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}.get(
                            code, "Error"
                        )
                        return self._send(code, status(code, reason, f"injected {code}"), headers)
                ns = re.escape(fake.namespace)
                m = re.fullmatch(rf"/apis/apps/v1/namespaces/{ns}/(deployments|statefulsets)/([^/]+)(/scale)?", path)
                if m:
                    return self._apps(
                        method,
                        "Deployment" if m.group(1) == "deployments" else "StatefulSet",
                        m.group(2),
                        bool(m.group(3)),
                    )
                if re.fullmatch(rf"/api/v1/namespaces/{ns}/events", path) and method == "POST":
                    event = self._body()
                    event.setdefault("metadata", {})["name"] = event["metadata"].get("generateName", "e-") + str(
                        len(fake.events)
                    )
                    fake.events.append(event)
                    return self._send(201, event)
                m = re.fullmatch(rf"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases(?:/([^/]+))?", path)
                if m:
                    return self._lease(method, m.group(1))
                self._send(404, status(404, "NotFound", f"the server could not find the requested resource ({path})"))

            def _apps(self, method: str, kind: str, name: str, scale: bool):
                with fake.lock:
                    w = fake.workloads.get(name)
                if w is None:
                    return self._send(
                        404, status(404, "NotFound", f'{kind.lower()}s.apps "{name}" not found', name=name)
                    )
                if method == "GET":
                    with fake.lock:
                        return self._send(200, fake._scale(name, w) if scale else fake._workload(kind, name, w))
                if method == "PATCH":
                    body = self._body()
                    if scale and fake.before_patch:
                        hook, fake.before_patch = fake.before_patch, None
                        hook()
                    with fake.lock:
                        wanted = body.get("metadata", {}).get("resourceVersion")
                        if wanted is not None and wanted != w["resourceVersion"]:
                            return self._send(
                                409,
                                status(
                                    409,
                                    "Conflict",
                                    f'Operation cannot be fulfilled on {kind.lower()}s.apps "{name}": '
                                    "the object has been modified; please apply your changes to the latest version and try again",
                                    name=name,
                                    group="apps",
                                    kind=f"{kind.lower()}s",
                                ),
                            )
                        if "spec" in body and "replicas" in body["spec"]:
                            w["replicas"] = int(body["spec"]["replicas"])
                        w["annotations"].update(body.get("metadata", {}).get("annotations") or {})
                        w["resourceVersion"] = fake._next()
                        return self._send(200, fake._scale(name, w) if scale else fake._workload(kind, name, w))
                self._send(405, status(405, "MethodNotAllowed", method))

            def _lease(self, method: str, name: str | None):
                with fake.lock:
                    if method == "GET":
                        lease = fake.leases.get(name)
                        if lease is None:
                            return self._send(
                                404,
                                status(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found', name=name),
                            )
                        return self._send(200, lease)
                    body = self._body()
                    lease_name = body["metadata"]["name"]
                    if method == "POST":
                        if lease_name in fake.leases:
                            return self._send(
                                409,
                                status(
                                    409, "AlreadyExists", f'leases.coordination.k8s.io "{lease_name}" already exists'
                                ),
                            )
                    elif method == "PUT":
                        current = fake.leases.get(lease_name)
                        if current is None:
                            return self._send(404, status(404, "NotFound", "lease not found"))
                        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                            return self._send(409, status(409, "Conflict", "the object has been modified"))
                    lease = copy.deepcopy(body)
                    lease.update({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1"})
                    lease["metadata"]["resourceVersion"] = fake._next()
                    lease["metadata"]["namespace"] = fake.namespace
                    fake.leases[lease_name] = lease
                    return self._send(201 if method == "POST" else 200, lease)

            def do_GET(self):
                self._route("GET")

            def do_PATCH(self):
                self._route("PATCH")

            def do_POST(self):
                self._route("POST")

            def do_PUT(self):
                self._route("PUT")

        return Handler


def wait(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)
