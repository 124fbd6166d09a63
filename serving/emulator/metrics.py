"""vLLM's Prometheus metrics (names, types, labels, buckets of DESIGN.md) on a private registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from serving.contracts.vllm_metrics import (
    CACHE_CONFIG_DEFAULTS,
    FINISHED_REASONS,
    ITERATION_TOKEN_BUCKETS,
    ITL_BUCKETS,
    PROMPT_TOKEN_SOURCES,
    REQUEST_N_BUCKETS,
    REQUEST_TIME_BUCKETS,
    SLEEP_STATES,
    TTFT_BUCKETS,
    WAITING_REASONS,
)


def buckets_1_2_5(maximum: int) -> tuple[int, ...]:
    """1, 2, 5, 10, 20, 50, ... up to `maximum`, as vLLM builds its token-count buckets."""
    out, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > maximum:
                return tuple(out)
            out.append(value)
        exponent += 1


class VllmMetrics:
    """Every vLLM metric the emulator exports, pre-labelled for one model and engine index."""

    def __init__(
        self,
        model_name: str,
        max_model_len: int,
        cache_labels: dict[str, str],
        engine: str = "0",
        registry: CollectorRegistry | None = None,
    ):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r, names, labels = self.registry, ["model_name", "engine"], (model_name, engine)

        def gauge(name, doc):
            return Gauge(name, doc, names, registry=r).labels(*labels)

        def counter(name, doc):
            return Counter(name, doc, names, registry=r).labels(*labels)

        def histogram(name, doc, buckets):
            return Histogram(name, doc, names, buckets=buckets, registry=r).labels(*labels)

        def by(kind, name, doc, label, values):
            family = kind(name, doc, [*names, label], registry=r)
            return {value: family.labels(*labels, value) for value in values}

        self.num_requests_running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.num_requests_waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.waiting_by_reason = by(
            Gauge,
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason.",
            "reason",
            WAITING_REASONS,
        )
        sleep = by(Gauge, "vllm:engine_sleep_state", "Engine sleep state.", "sleep_state", SLEEP_STATES)
        sleep["awake"].set(1)  # the emulator never sleeps
        self.kv_cache_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        cache = {**CACHE_CONFIG_DEFAULTS, **cache_labels}
        info = Gauge(
            "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", ["engine", *cache], registry=r
        )
        info.labels(engine, *cache.values()).set(1)  # as vLLM labels it: the engine, not the model

        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.prompt_tokens_by_source = by(
            Counter,
            "vllm:prompt_tokens_by_source",
            "Number of prompt tokens by source.",
            "source",
            PROMPT_TOKEN_SOURCES,
        )
        self.prompt_tokens_cached = counter(
            "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external)."
        )
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success", "Count of successfully processed requests.", [*names, "finished_reason"], registry=r
        )
        self.request_success = {reason: success.labels(*labels, reason) for reason in FINISHED_REASONS}
        self.num_preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prefix_cache_queries = counter(
            "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."
        )
        self.prefix_cache_hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        )
        # no KV connector and no multi-modal inputs: these stay at zero, as on a text-only vLLM without one
        counter("vllm:external_prefix_cache_queries", "External prefix cache queries, in queried tokens.")
        counter("vllm:external_prefix_cache_hits", "External prefix cache hits, in cached tokens.")
        counter("vllm:mm_cache_queries", "Multi-modal cache queries, in terms of number of queried items.")
        counter("vllm:mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items.")
        # the engine model's roofline terms of each step, per GPU (vLLM's model FLOPs utilization counters)
        self.flops = counter("vllm:estimated_flops_per_gpu", "Estimated number of floating point operations per GPU.")
        self.read_bytes = counter("vllm:estimated_read_bytes_per_gpu", "Estimated bytes read from memory per GPU.")
        self.write_bytes = counter("vllm:estimated_write_bytes_per_gpu", "Estimated bytes written to memory per GPU.")

        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ITL_BUCKETS
        )
        self.tpot = histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            ITL_BUCKETS,
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", REQUEST_TIME_BUCKETS
        )
        self.queue_time = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_TIME_BUCKETS,
        )
        self.inference_time = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            REQUEST_TIME_BUCKETS,
        )
        self.prefill_time = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            REQUEST_TIME_BUCKETS,
        )
        self.decode_time = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            REQUEST_TIME_BUCKETS,
        )
        token_buckets = buckets_1_2_5(max_model_len)
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", token_buckets
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", token_buckets
        )
        self.request_max_generation_tokens = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            token_buckets,
        )
        self.request_params_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", token_buckets
        )
        self.request_params_n = histogram(
            "vllm:request_params_n", "Histogram of the n request parameter.", REQUEST_N_BUCKETS
        )
        self.request_prefill_kv_computed_tokens = histogram(
            "vllm:request_prefill_kv_computed_tokens",
            "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
            token_buckets,
        )
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", ITERATION_TOKEN_BUCKETS
        )


class HttpMetrics:
    """The API server's own request metrics (prometheus-fastapi-instrumentator's names)."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "http_requests",
            "Total number of requests by method, status and handler.",
            ["handler", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler.",
            ["handler", "method"],
            buckets=(0.1, 0.5, 1.0),
            registry=registry,
        )

    def observe(self, handler: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(handler, method, f"{status // 100}xx").inc()
        self.duration.labels(handler, method).observe(seconds)
