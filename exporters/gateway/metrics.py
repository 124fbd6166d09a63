"""The token and queue exporter's metrics (collectors only, no HTTP): per model and (capped) tenant."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from serving.contracts.vllm_metrics import ITL_BUCKETS, TTFT_BUCKETS
from serving.contracts.vllm_metrics import REQUEST_TIME_BUCKETS as E2E_BUCKETS

# vLLM's buckets (DESIGN.md), so gateway-side and engine-side latencies line up on one dashboard
QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
UNKNOWN_MODEL = "unknown"  # the model label of requests for names no backend has reported (yet)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry):
        mt = ["model", "tenant"]
        self.requests = Counter(
            "headroom_gateway_requests",
            "Requests through the gateway by model, tenant and HTTP status.",
            [*mt, "status"],
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "headroom_gateway_prompt_tokens", "Prompt tokens of completed requests.", mt, registry=registry
        )
        self.output_tokens = Counter(
            "headroom_gateway_output_tokens", "Output tokens of completed requests.", mt, registry=registry
        )
        self.rejections = Counter(
            "headroom_gateway_rejections",
            "Requests turned away before any backend saw them, by reason "
            "(queue_full, evicted, queue_timeout, no_backend, unauthorized, invalid, unknown_model).",
            [*mt, "reason"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "headroom_gateway_queue_wait_seconds",
            "Time from arrival until a backend slot was free.",
            ["model"],
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "headroom_gateway_time_to_first_token_seconds",
            "Client-side time to first token: from the "
            "request's arrival at the gateway to the first event with choices leaving it.",
            mt,
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.itl = Histogram(
            "headroom_gateway_inter_token_latency_seconds",
            "Gaps between streamed events with choices, as the client sees them.",
            ["model"],
            buckets=ITL_BUCKETS,
            registry=registry,
        )
        self.e2e = Histogram(
            "headroom_gateway_e2e_request_latency_seconds",
            "Client-side end-to-end latency.",
            mt,
            buckets=E2E_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "headroom_gateway_retries",
            "Requests retried on another backend before any byte reached the client.",
            ["model"],
            registry=registry,
        )
        self.slo_requests = Counter(
            "headroom_gateway_slo_requests",
            "Answered requests counted against each latency "
            "SLO of their model (ttft, tpot, e2e), met or missed, at the thresholds in the "
            "gateway's config.",
            [*mt, "slo", "result"],
            registry=registry,
        )
        self.backend_failures = Counter(
            "headroom_gateway_backend_failures",
            "Backend failures by phase (connect: before the "
            "first byte, retried; mid_stream: after it, the client got an error event).",
            ["backend", "phase"],
            registry=registry,
        )
        self._series: dict[tuple[str, str], Series] = {}
        self._models: dict[str, ModelSeries] = {}
        self._children: dict[str, set[tuple[object, tuple[str, ...]]]] = {}  # tenant -> (metric, label values) made

    def child(self, metric, model: str, tenant: str, *rest: str):
        """metric.labels(model, tenant, *rest), remembered so that the tenant's series can be dropped."""
        self._children.setdefault(tenant, set()).add((metric, (model, tenant, *rest)))
        return metric.labels(model, tenant, *rest)

    def forget_tenant(self, tenant: str) -> None:
        """Drop every series of a tenant that lost its own label (its traffic counts as `other` from now on), so
        the series stay bounded by the label cap however many tenants come and go."""
        for key in [k for k in self._series if k[1] == tenant]:
            del self._series[key]
        for metric, values in self._children.pop(tenant, ()):
            metric.remove(*values)

    def series(self, model: str, tenant: str) -> Series:
        """The children for one model and tenant label, looked up once (the hot path touches several per request)."""
        found = self._series.get((model, tenant))
        if found is None:
            found = self._series[(model, tenant)] = Series(self, model, tenant)
        return found

    def model(self, model: str) -> ModelSeries:
        found = self._models.get(model)
        if found is None:
            found = self._models[model] = ModelSeries(
                self.queue_wait.labels(model), self.itl.labels(model), self.retries.labels(model)
            )
        return found

    def backends_seen(self, addresses) -> None:
        """Each backend's failure counters at 0 from its discovery on, so that rate() counts its first failure."""
        for address in addresses:
            for phase in ("connect", "mid_stream"):
                self.backend_failures.labels(address, phase)


@dataclass
class ModelSeries:
    queue_wait: object
    itl: object
    retries: object


_STATUSES_AT_ZERO = ("200", "429")


class Series:
    def __init__(self, metrics: GatewayMetrics, model: str, tenant: str):
        self._metrics, self._by_status, self._by_slo = metrics, {}, {}
        self.model, self.tenant = model, tenant
        self.prompt_tokens = metrics.child(metrics.prompt_tokens, model, tenant)
        self.output_tokens = metrics.child(metrics.output_tokens, model, tenant)
        self.ttft = metrics.child(metrics.ttft, model, tenant)
        self.e2e = metrics.child(metrics.e2e, model, tenant)
        if model:  # served and turned away exist from the first request on, at 0: rate() then counts the first of each
            for status in _STATUSES_AT_ZERO:
                self._by_status[status] = metrics.child(metrics.requests, model, tenant, status)

    def answered(self, status: str) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self._metrics.child(
                self._metrics.requests, self.model, self.tenant, status
            )
        child.inc()

    def judged(self, slo: str, met: bool) -> None:
        """One request counted against one SLO; both results exist from the first, so a ratio has both sides."""
        children = self._by_slo.get(slo)
        if children is None:
            m = self._metrics
            children = self._by_slo[slo] = {
                result: m.child(m.slo_requests, self.model, self.tenant, slo, result) for result in ("met", "missed")
            }
        children["met" if met else "missed"].inc()


@dataclass(eq=False)  # registered in a CollectorRegistry: hashed by identity
class StateCollector:
    """Gauges read from the gateway's state at scrape time: backends ready, requests outstanding per backend,
    requests queued per model (nothing to update on the request path)."""

    pool: object  # BackendPool
    admission: object  # Admission
    model_label: object = lambda model: model  # a queue's model name -> its label (unknown names: `unknown`)

    def collect(self):
        ready = GaugeMetricFamily("headroom_gateway_ready_backends", "Backends the gateway routes to.")
        ready.add_metric([], len(self.pool.routable()))
        yield ready
        in_flight = GaugeMetricFamily(
            "headroom_gateway_backend_in_flight_requests", "Requests outstanding per backend.", labels=["backend"]
        )
        for backend in self.pool.backends.values():
            in_flight.add_metric([backend.address], backend.outstanding)
        yield in_flight
        depth = GaugeMetricFamily(
            "headroom_gateway_queue_depth", "Requests waiting in the gateway for a backend slot.", labels=["model"]
        )
        by_label: dict[str, int] = {}
        for model in self.admission.queues:
            label = self.model_label(model)
            by_label[label] = by_label.get(label, 0) + self.admission.depth(model)
        for label in sorted(by_label):
            depth.add_metric([label], by_label[label])
        yield depth


@dataclass(eq=False)
class ListenerCollector:
    """The client-facing listener's connections, read at scrape time: open now, and turned away by reason."""

    stats: object  # () -> {"open": n, "max_connections": n, "header_timeout": n, "malformed": n}

    def collect(self):
        stats = self.stats()
        open_now = GaugeMetricFamily("headroom_gateway_open_connections", "Client connections open on the API port.")
        open_now.add_metric([], stats["open"])
        yield open_now
        away = CounterMetricFamily(
            "headroom_gateway_connections_turned_away",
            "Client connections closed by a guard: "
            "over max_connections, headers not in within header_timeout_s, or a request the "
            "parser refused (malformed, or over a size limit).",
            labels=["reason"],
        )
        for reason in ("max_connections", "header_timeout", "malformed"):
            away.add_metric([reason], stats[reason])
        yield away
