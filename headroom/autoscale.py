"""`headroom autoscale --config F`: build the loop from a validated config (Prometheus source, a predictive policy and an
actuator per target, leader election), serve its /metrics, log decisions as JSON lines, stop cleanly on a signal."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

from autoscaler.actuators.base import DryRun, MetricOnly
from autoscaler.config import AutoscalerConfig, Capacity, ConfigError, TargetConfig, load_config
from autoscaler.loop import AutoscalerLoop, Target
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy.predictive import Predictive, PredictiveConfig
from autoscaler.sources.prometheus import PrometheusSource
from serving.profiles import gpu_price_per_hour, load_profile

log = logging.getLogger("headroom.autoscaler")


def resolve_capacity(capacity: Capacity, slo, where: str) -> float:
    """Requests/s per replica at the SLO: as given, from a `headroom loadtest sweep` file, or from the engine model."""
    if capacity.rps is not None:
        return capacity.rps
    if capacity.file is not None:
        from loadgen.sweep import load_capacity_file

        try:
            return load_capacity_file(capacity.file).capacity_rps
        except (OSError, ValueError) as err:
            raise ConfigError(f"{where}.capacity.file: cannot use {capacity.file}: {err}") from None
    table = capacity_table(capacity, slo, where)
    return table.at(capacity.prompt_tokens, capacity.output_tokens)


def capacity_table(capacity: Capacity, slo, where: str, measuring: list | None = None):
    """The engine profile's capacity over length mixes; each cell is measured on the engine the first time a lookup
    needs it (seconds) and kept on disk, so later runs and other processes reuse it. With `measuring` (a list the
    caller closes), passes look cells up without waiting: the ones not yet known are measured in a child process."""
    from autoscaler.capacity.mix_table import OUTPUT_GRID, PROMPT_GRID, CapacityTable
    from headroom.capacity_cells import BackgroundCells, measure_cell
    from serving.common.disk_cache import cache_folder

    try:
        profile = load_profile(capacity.profile)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{where}.capacity.profile: {err}") from None
    folder = cache_folder(os.environ)
    measure = functools.partial(measure_cell, profile, slo.ttft_s, slo.itl_s, folder)
    if measuring is None:
        return CapacityTable(PROMPT_GRID, OUTPUT_GRID, measure=measure)
    cells = BackgroundCells(profile, slo.ttft_s, slo.itl_s, folder)
    measuring.append(cells)
    return CapacityTable(PROMPT_GRID, OUTPUT_GRID, measure=measure, pending=cells.poll)


def build_policy(target: TargetConfig, interval_s: float, lag_s: float, capacity_rps: float, table=None) -> Predictive:
    return Predictive(
        PredictiveConfig(
            capacity_rps=capacity_rps,
            slo_ttft_s=target.slo.ttft_s,
            slo_itl_s=target.slo.itl_s,
            cold_start_s=target.cold_start_s,
            interval_s=interval_s,
            observation_lag_s=lag_s,
            fill=target.fill,
            min_replicas=target.min_replicas,
            max_replicas=target.max_replicas,
            capacity_table=table,
            scale_down_window_s=target.scale_down_window_s,
            scale_down_window_unproven_s=target.scale_down_window_unproven_s,
            cooldown_s=target.cooldown_s,
            rise_memory_s=target.rise_memory_s,
            fallback_mix=(target.capacity.prompt_tokens, target.capacity.output_tokens),
        ),
        name=f"predictive:{target.name}",
    )


def build_actuator(target: TargetConfig, where: str, api_client=None, local=None):
    kind = target.actuator.kind
    if kind == "local":
        if local is None:
            raise ConfigError(
                f"{where}.actuator.kind: 'local' scales `headroom up`'s fleet and runs inside it "
                "(headroom up --autoscale); use kubernetes, dry-run or metric here"
            )
        return local
    if kind in ("dry-run", "metric"):
        cls = DryRun if kind == "dry-run" else MetricOnly
        if target.actuator.workload and api_client is not None:  # read the real counts, write nothing
            reader = _kubernetes(target, api_client)
            return cls(read=reader.counts)
        return cls(initial=target.min_replicas)
    return _kubernetes(target, api_client)


def _kubernetes(target: TargetConfig, api_client):
    from autoscaler.actuators.kubernetes import KubernetesActuator, WorkloadRef

    a = target.actuator
    return KubernetesActuator(
        api_client, WorkloadRef(a.namespace, a.workload, a.workload_kind), instance=socket.gethostname()
    )


def kubernetes_client(config: AutoscalerConfig):
    """In-cluster configuration, else the kubeconfig; only when a target or the leader election needs Kubernetes."""
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        if config.kubeconfig is not None:
            kube_config.load_kube_config(str(config.kubeconfig))
        else:
            try:
                kube_config.load_incluster_config()
            except kube_config.ConfigException:
                kube_config.load_kube_config()
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"kubeconfig: cannot configure a Kubernetes client: {err}") from None
    return client.ApiClient()


def target_cost(target: TargetConfig, where: str) -> tuple[float, int]:
    """(price per GPU-hour, GPUs per replica) of a target: its config, else its GPU's listed price and its capacity
    profile's tensor parallelism."""
    try:
        price = target.price_per_gpu_hour if target.price_per_gpu_hour is not None else gpu_price_per_hour(target.gpu)
        gpus = target.gpus_per_replica or (load_profile(target.capacity.profile).gpus if target.capacity.profile else 1)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    return price, gpus


def build_loop(
    config: AutoscalerConfig, metrics: AutoscalerMetrics | None = None, api_client=None, local=None, source=None
) -> AutoscalerLoop:
    needs_kube = config.leader_election is not None or any(
        t.actuator.kind == "kubernetes" or (t.actuator.kind in ("dry-run", "metric") and t.actuator.workload)
        for t in config.targets
    )
    if needs_kube and api_client is None:
        api_client = kubernetes_client(config)
    metrics = metrics or AutoscalerMetrics()
    lag = config.interval_s + 30.0  # a scrape interval and half a rate window, about
    targets, tables = [], {}  # one table per (profile, SLO): targets on the same model share its measured cells
    measuring = []  # the tables' background measurements, closed with the loop
    for i, target in enumerate(config.targets):
        where = f"targets.{i}"
        table = None
        if target.capacity.profile:
            key = (target.capacity.profile, target.slo.ttft_s, target.slo.itl_s)
            table = tables[key] = tables.get(key) or capacity_table(target.capacity, target.slo, where, measuring)
        capacity = (
            table.at(target.capacity.prompt_tokens, target.capacity.output_tokens)
            if table
            else resolve_capacity(target.capacity, target.slo, where)
        )
        targets.append(
            Target(
                target.name,
                build_policy(target, config.interval_s, lag, capacity, table),
                build_actuator(target, where, api_client, local),
            )
        )
        metrics.describe(target.name, target.gpu, *target_cost(target, where))
    elector = None
    if config.leader_election is not None:
        from autoscaler.actuators.lease import LeaderElector, LeaseConfig

        le = config.leader_election
        elector = LeaderElector(
            api_client, LeaseConfig(le.namespace, le.name, le.duration_s), le.identity or socket.gethostname()
        )
    closing = tuple(cells.close for cells in measuring)
    return AutoscalerLoop(targets, source or PrometheusSource(config.prometheus), metrics, elector, closing=closing)


def warm_start(loop: AutoscalerLoop, config: AutoscalerConfig, now: float) -> dict[str, int]:
    """Feed each target's forecaster its history before the first decision: Prometheus' last `days` of request rate,
    or a trace's per-step rates laid out to end now (the same history for every target). Returns samples per target."""
    warm = config.warm_start
    if warm is None:
        return {}
    forecasting = [t for t in loop.targets if hasattr(t.state, "forecaster")]
    if warm.trace is not None:
        import numpy as np

        from loadgen.workloads.load import load_workload

        workload = load_workload(str(warm.trace))
        counts = np.bincount((workload.arrival_s // warm.step_s).astype(np.int64))
        times = now - (len(counts) - np.arange(len(counts))) * warm.step_s
        history = {t.name: (times.tolist(), (counts / warm.step_s).tolist()) for t in forecasting}
    else:
        history = loop.source.history([t.name for t in forecasting], now - warm.days * 86400.0, now, warm.step_s)
    taken = {}
    for target in forecasting:
        times, rates = history.get(target.name, ([], []))
        taken[target.name] = target.state.forecaster.replay(times, rates, target.policy.horizon_s())
    return taken


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{"):
            return message[:-1] + f', "level": "{record.levelname.lower()}", "logger": "{record.name}"}}'
        return json.dumps(
            {"event": "log", "level": record.levelname.lower(), "logger": record.name, "message": message}
        )


def run_autoscaler(config_path: str, once: bool = False) -> int:
    """The process: loop every interval until SIGINT or SIGTERM (the pass in progress finishes first)."""
    from prometheus_client import start_http_server

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        config = load_config(config_path)
        metrics = AutoscalerMetrics()
        loop = build_loop(config, metrics)
    except (ConfigError, OSError, ValueError) as err:  # a bad config, profile or trace, named
        print(f"headroom autoscale: {err}", file=sys.stderr)
        return 2
    try:
        taken = warm_start(loop, config, time.time())
        log.info(json.dumps({"event": "warm_start", "samples": taken}))
    except Exception as err:  # no history is not a reason not to run: the forecaster starts empty  # noqa: BLE001
        log.warning(json.dumps({"event": "warm_start_failed", "error": str(err)}))
    server, _thread = start_http_server(config.metrics.port, config.metrics.host, registry=metrics.registry)
    log.info(
        '{"event": "started", "targets": %d, "metrics": "http://%s:%d/metrics"}',
        len(loop.targets),
        config.metrics.host,
        server.server_address[1],
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        while not stop.is_set():
            loop.run_once()
            if once:
                break
            stop.wait(config.interval_s)
    finally:
        loop.close()
        server.shutdown()
        server.server_close()
        log.info('{"event": "stopped"}')
    if once and loop.source_errors:  # one pass that could not read its metrics did not do its job
        print(f"headroom autoscale --once: metrics could not be read: {'; '.join(loop.source_errors)}", file=sys.stderr)
        return 1
    return 0


def main_args(args) -> int:
    return run_autoscaler(args.config, once=args.once)


__all__ = ["build_loop", "resolve_capacity", "run_autoscaler"]
