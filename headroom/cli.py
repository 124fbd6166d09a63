"""The `headroom` command: parses arguments and hands each subcommand to its package."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from autoscaler import defaults


def _install_loop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency, but the stdlib loop also works
        pass


def _emulate(args) -> int:
    from serving.emulator.replica import EmulatorConfig, Faults, run_replica
    from serving.profiles import load_profile

    profile = load_profile(args.profile)
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        gpu_port=args.gpu_port,
        served_model_name=args.served_model_name,
        cold_start_s=args.cold_start,
        eos_mean_tokens=args.eos_mean_tokens,
        seed=args.seed,
        faults=Faults(
            error_rate=args.error_rate, slow_factor=args.slow_factor, stall_s=args.stall, crash_after_s=args.crash_after
        ),
        request_log=args.request_log,
    )
    _install_loop()
    asyncio.run(run_replica(profile, config))
    return 0


def _gateway(args) -> int:
    from exporters.gateway.config import load_gateway_config, parse_gateway_config
    from exporters.gateway.service import run_gateway

    config = load_gateway_config(args.config) if args.config else parse_gateway_config({})
    raw = config.model_dump(exclude_unset=True)
    raw.update(
        {
            k: v
            for k, v in (("host", args.host), ("port", args.port), ("metrics_port", args.metrics_port))
            if v is not None
        }
    )
    if args.backend:
        raw["backends"] = {**raw.get("backends", {}), "static": [*config.backends.static, *args.backend]}
    config = parse_gateway_config(raw, "the gateway's config and flags")  # flags are checked like the file
    _install_loop()
    asyncio.run(run_gateway(config))
    return 0


def _gpu_exporter(args) -> int:
    from exporters.gpu.nvml_reader import NvmlSource
    from exporters.gpu.server import GpuExporterConfig, serve

    config = GpuExporterConfig(host=args.host, port=args.port, interval_s=args.interval, hostname=args.hostname)
    source = NvmlSource()  # exits with a clear message where no NVIDIA driver is present
    pods = None
    if args.kubernetes:
        from exporters.gpu.pods import KubeletPodResources

        pods = KubeletPodResources(args.pod_resources_socket)
    try:
        serve(config, source, pods)
    finally:
        source.close()
        if pods is not None:
            pods.close()
    return 0


def _profiles_add(args) -> int:
    from pathlib import Path

    import yaml

    from serving.profiles import load_profile
    from serving.profiles.from_config import profile_document

    if args.tp < 1:
        raise ValueError(f"--tp must be at least 1, got {args.tp}")
    document = profile_document(Path(args.config), args.gpu, args.tp, args.name, args.model_name, args.max_model_len)
    out = Path(args.out or f"{document['name']}.yaml")
    if out.exists():
        raise ValueError(f"--out: {out} exists; choose another path or remove it")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(yaml.safe_dump(document, sort_keys=False))
    tmp.replace(out)  # whole or not at all
    profile = load_profile(str(out))
    model = profile.model
    print(
        f"wrote {out}: {model.name}, {model.parameters / 1e9:.2f}B parameters ({model.active_parameters / 1e9:.2f}B "
        f"active), {profile.weights_per_gpu_bytes / 2**30:.1f} GiB of weights per GPU, KV cache "
        f"{profile.kv_capacity_tokens:,} tokens on {profile.gpus} x {profile.gpu.name}"
    )
    return 0


def _profiles(args) -> int:
    from serving.profiles import gpu_price_per_hour, list_profiles, load_profile

    rows = []
    for name in list_profiles():
        p = load_profile(name)
        rows.append(
            {
                "profile": name,
                "model": p.model.name,
                "gpu": p.gpu.name,
                "tensor_parallel": p.tensor_parallel,
                "kv_cache_tokens": p.kv_capacity_tokens,
                "max_model_len": p.model.max_model_len,
                "usd_per_hour": round(gpu_price_per_hour(p.gpu.name) * p.gpus, 2),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


def _up(args) -> int:
    from headroom.stack import StackConfig, run_stack

    config = StackConfig(
        replicas=args.replicas,
        profile=args.profile,
        cold_start_s=args.cold_start,
        host=args.host,
        gateway_port=args.port,
        prometheus_port=args.prometheus_port,
        run_dir=args.run_dir,
        demo=args.demo,
        json_output=args.json,
        autoscale=args.autoscale,
        autoscale_max=args.max_replicas,
        slo_ttft_s=args.slo_ttft,
        slo_itl_s=args.slo_itl,
        **({"campaign": args.campaign} if args.campaign else {}),
        console_port=None if args.no_console else args.console_port,
    )
    _install_loop()
    return asyncio.run(run_stack(config))


def slo_by_model(autoscaler_config: str) -> dict:
    """The mixin's `sloByModel` from an autoscaler.yaml: each target's TTFT and time-per-output-token thresholds."""
    from autoscaler.config import load_config

    config = load_config(autoscaler_config)
    return {t.name: {"ttftSeconds": t.slo.ttft_s, "tpotSeconds": t.slo.itl_s} for t in config.targets}


def _dashboards_build(args) -> int:
    from pathlib import Path

    from dashboards.build import build

    written = build(
        Path(args.out),
        slo_by_model(args.slo_from) if args.slo_from else None,
        args.namespace,
        Path(args.docs) if args.docs else None,
    )
    for path in written:
        print(path)
    return 0


def _autoscale(args) -> int:
    from headroom.autoscale import main_args

    return main_args(args)


def _simulate(args) -> int:
    from pathlib import Path

    from autoscaler.sim.args import SimulateArgs
    from autoscaler.sim.report import save, table
    from autoscaler.sim.run import run_all
    from autoscaler.sim.sweep import sweep
    from serving.common.disk_cache import cache_folder

    sim_args = SimulateArgs(
        trace=args.trace,
        policies=[p for p in args.policy.split(",") if p],
        profile=args.profile,
        slo_ttft_s=args.slo_ttft,
        slo_itl_s=args.slo_itl,
        cold_start_s=args.cold_start,
        price=args.price,
        mode=args.mode,
        start_s=args.start,
        end_s=args.end,
        time_scale=args.time_scale,
        rate_scale=args.rate_scale,
        seed=args.seed,
        model_seed=args.model_seed,
        lengths_from=args.lengths_from,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        initial_replicas=args.initial_replicas,
        scrape_interval_s=args.scrape_interval,
        jobs=args.jobs,
        judge_from_s=args.judge_from,
        clock_phase_s=args.clock_phase,
        fluid_model=args.fluid_model,
        cache_dir=cache_folder(os.environ),
    )
    if not sim_args.policies:
        raise ValueError("--policy needs at least one policy")
    if not 0 <= args.clock_phase < 86400:
        raise ValueError(f"--clock-phase must be between 0 and 86400 seconds, got {args.clock_phase:g}")
    log = lambda line: print(line, file=sys.stderr, flush=True)
    if args.sweep:
        results, tried = sweep(sim_args, args.goal, progress=log)
    else:
        results, tried = run_all(sim_args), []
    summaries = [r.summary for r in results]
    if args.out:
        out = Path(args.out)
        written = save(results, out)
        if tried:
            (out / "sweep.json").write_text(json.dumps(tried, indent=2))
        log(f"wrote {len(written)} files to {out}")
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        first = summaries[0]
        print(
            f"{first['profile']}, SLO TTFT <= {first['slo_ttft_s']:g} s and mean ITL <= {first['slo_itl_s']:g} s, "
            f"cold start {first['cold_start_s']:g} s, {first['requests']} requests over {first['duration_s'] / 3600:.2f} h"
            + (f", each baseline tuned for >= {args.goal:.0%} attainment" if args.sweep else "")
        )
        print(table(summaries))
    return 0


def _console(args) -> int:
    from headroom.console import run

    return run(args)


def _k8s_render(args) -> int:
    from headroom.k8s import render

    return render(args)


def _plan(args) -> int:
    from headroom.plan import run

    return run(args)


def _loadtest_run(args) -> int:
    from loadgen.run import run_campaign

    out = args.out or f"results/{__import__('pathlib').Path(args.campaign).stem}"
    summary, code = run_campaign(args.campaign, out, workers=args.workers, quiet=args.quiet)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(campaign_table(summary))
        print(f"results in {out}" + (f"  (PARTIAL: {summary['partial_reason']})" if summary["partial"] else ""))
    if summary["partial"]:
        print(f"headroom loadtest: {summary['partial_reason']}", file=sys.stderr)
    return code


def _loadtest_sweep(args) -> int:
    from pathlib import Path

    from loadgen.sweep import sweep_capacity

    out = Path(args.out or f"results/sweep-{Path(args.campaign).stem}")
    log = lambda line: print(line, file=sys.stderr, flush=True)
    result = sweep_capacity(
        args.campaign,
        out,
        goal=args.goal,
        probe_s=args.probe_seconds,
        start_rate=args.start_rate,
        max_rate=args.max_rate,
        tolerance=args.tolerance,
        workers=args.workers,
        replicas=args.replicas,
        progress=log,
    )
    if args.json:
        print(json.dumps(result.model_dump(), indent=2))
    else:
        print(
            f"capacity at >= {args.goal:.0%} within TTFT <= {result.slo_ttft_s:g} s and TPOT <= {result.slo_tpot_s:g} s: "
            f"{result.capacity_rps:.3f} req/s per replica ({len(result.probes)} probes); written to {out / 'capacity.yaml'}"
        )
    return 0


def campaign_table(summary: dict) -> str:
    """The campaign summary as vllm bench serve prints it."""
    rows = [
        ("Successful requests", summary["completed"]),
        ("Failed requests", summary["failed"]),
        ("Benchmark duration (s)", summary["duration"]),
        ("Request throughput (req/s)", summary["request_throughput"]),
        ("Request goodput (req/s)", summary["request_goodput"]),
        ("Output token throughput (tok/s)", summary["output_throughput"]),
        ("SLO attainment", summary["slo_attainment"]),
    ]
    for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2el", "E2E latency")):
        rows += [
            (f"Mean {label} (ms)", summary[f"mean_{key}_ms"]),
            (f"Median {label} (ms)", summary[f"median_{key}_ms"]),
            (f"P99 {label} (ms)", summary[f"p99_{key}_ms"]),
        ]
    width = max(len(label) for label, _ in rows)
    title = f" {summary['campaign']} "
    lines = [title.center(width + 14, "=")]
    lines += [f"{label:<{width}}  {_fmt(value):>12}" for label, value in rows]
    return "\n".join(lines)


def print_table(rows: list[dict]) -> None:
    if not rows:
        print("(nothing)")
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).ljust(widths[c]) for c in cols))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom", description="Headroom: serve, observe, scale and plan vLLM on GPUs."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    em = sub.add_parser("emulate", help="run one emulated vLLM replica")
    em.add_argument("--port", type=int, default=8000)
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--gpu-port", type=int, default=None, help="serve dcgm-exporter style GPU metrics on this port")
    em.add_argument("--profile", default="llama-3.1-8b-h100", help="shipped profile name or a profile YAML path")
    em.add_argument("--cold-start", type=float, default=0.0, metavar="SECONDS", help="time before /ready turns 200")
    em.add_argument("--served-model-name", default=None)
    em.add_argument("--eos-mean-tokens", type=float, default=200.0, help="mean output length when ignore_eos is false")
    em.add_argument("--seed", type=int, default=0)
    em.add_argument("--error-rate", type=float, default=0.0, help="fault: share of requests answered 500")
    em.add_argument(
        "--request-log",
        default=None,
        metavar="FILE",
        help="append one JSON line per finished request: id and the server's own TTFT and E2E",
    )
    em.add_argument("--slow-factor", type=float, default=1.0, help="fault: multiply every step's duration")
    em.add_argument("--stall", type=float, default=0.0, metavar="SECONDS", help="fault: freeze the engine at start")
    em.add_argument("--crash-after", type=float, default=None, metavar="SECONDS", help="fault: exit abruptly")
    em.set_defaults(func=_emulate)

    gw = sub.add_parser(
        "gateway", help="the OpenAI-compatible gateway (token and queue exporter) in front of vLLM replicas"
    )
    gw.add_argument("--config", default=None, metavar="gateway.yaml", help="backends, models, admission, keys file")
    gw.add_argument("--host", default=None)
    gw.add_argument("--port", type=int, default=None)
    gw.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port only, not on --port")
    gw.add_argument("--backend", action="append", default=[], metavar="HOST:PORT", help="a static backend (repeatable)")
    gw.set_defaults(func=_gateway)

    gx = sub.add_parser(
        "gpu-exporter", help="serve this host's NVIDIA GPUs through NVML with dcgm-exporter's metric names"
    )
    gx.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default loopback; 0.0.0.0 for a Prometheus on another host)",
    )
    gx.add_argument("--port", type=int, default=9400)
    gx.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="how often NVML is read")
    gx.add_argument(
        "--hostname", default=None, help="the Hostname label (default: this host's name; on Kubernetes, the node)"
    )
    gx.add_argument(
        "--kubernetes",
        action="store_true",
        help="label each GPU with the pod, namespace and container holding it (kubelet pod-resources API)",
    )
    gx.add_argument("--pod-resources-socket", default="/var/lib/kubelet/pod-resources/kubelet.sock", metavar="PATH")
    gx.set_defaults(func=_gpu_exporter)

    pr = sub.add_parser("profiles", help="list the shipped replica profiles; `profiles add` builds one for any model")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=_profiles)
    pra = pr.add_subparsers(dest="profiles_command").add_parser(
        "add", help="a profile from a Hugging Face config.json (dense or MoE, GQA, bf16 or fp8) on a GPU"
    )
    pra.add_argument("--config", required=True, metavar="CONFIG_JSON", help="the model's config.json")
    pra.add_argument("--gpu", required=True, help="a GPU of the shipped table (H100, H200, A100-80GB, L4, A10G)")
    pra.add_argument("--tp", type=int, default=1, help="tensor parallelism: GPUs per replica")
    pra.add_argument("--name", help="the profile's name (default: the model's, the GPU's and the parallelism)")
    pra.add_argument("--model-name", help="the served model name (default: the config's _name_or_path or folder)")
    pra.add_argument("--max-model-len", type=int, help="cap the context, as vLLM's --max-model-len does")
    pra.add_argument("--out", help="where to write it (default: NAME.yaml here); load it by path anywhere")
    pra.set_defaults(func=_profiles_add)

    up = sub.add_parser("up", help="run the local stack: emulator fleet, gateway, Prometheus")
    up.add_argument("--replicas", type=int, default=2)
    up.add_argument("--profile", default="llama-3.1-8b-h100")
    up.add_argument("--cold-start", type=float, default=5.0, metavar="SECONDS")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080, help="gateway port (0: any free port)")
    up.add_argument("--prometheus-port", type=int, default=9090, help="0: any free port")
    up.add_argument("--run-dir", default=".run", help="where configs, targets and Prometheus data go")
    up.add_argument("--console-port", type=int, default=8501, help="the console's port (0: any free port)")
    up.add_argument("--no-console", action="store_true", help="run the stack without the Streamlit console")
    up.add_argument(
        "--demo",
        action="store_true",
        help="run a load campaign through the gateway, print its summary next to Prometheus' one, exit",
    )
    up.add_argument(
        "--campaign",
        default=None,
        metavar="CAMPAIGN.yaml",
        help="the campaign --demo runs through the gateway (default: the shipped demo campaign)",
    )
    up.add_argument("--json", action="store_true", help="print the demo summary as JSON")
    up.add_argument(
        "--autoscale", action="store_true", help="run the predictive autoscaler on the fleet, from this Prometheus"
    )
    up.add_argument("--max-replicas", type=int, default=6, help="the autoscaler's upper bound")
    up.add_argument(
        "--slo-ttft",
        type=float,
        default=1.0,
        metavar="S",
        help="the SLO's time to first token: counted by the gateway, scaled for, alerted on",
    )
    up.add_argument("--slo-itl", type=float, default=0.05, metavar="S", help="the SLO's mean time per output token")
    up.set_defaults(func=_up)

    sim = sub.add_parser("simulate", help="replay a trace through a simulated fleet under scaling policies")
    sim.add_argument("--trace", required=True, help="Azure 2023 .csv, JSONL replay file, or a ServeGen folder")
    sim.add_argument("--profile", default=defaults.PROFILE)
    sim.add_argument("--slo-ttft", type=float, default=defaults.SLO_TTFT_S, metavar="S")
    sim.add_argument(
        "--slo-itl", type=float, default=defaults.SLO_ITL_S, metavar="S", help="mean inter-token latency target"
    )
    sim.add_argument("--cold-start", type=float, default=defaults.COLD_START_S, metavar="S")
    sim.add_argument(
        "--price",
        type=float,
        default=None,
        metavar="USD_PER_GPU_HOUR",
        help="default: the profile GPU's on-demand price",
    )
    sim.add_argument(
        "--policy",
        default="hpa:gpu_util=70",
        help="comma-separated: predictive[:FILL], static:N, hpa:waiting|gpu_util|running=TARGET, keda[:N], kpa[:N], "
        "oracle, package.module:Class",
    )
    sim.add_argument("--mode", choices=["request", "fluid"], default="request")
    sim.add_argument(
        "--fluid-model",
        choices=["auto", "cohort", "table"],
        default="auto",
        help="fluid replicas: cohorts in lockstep timed by the engine's step times (a request trace's "
        "default), or load tables measured on the engine (a ServeGen folder's, and its only one)",
    )
    sim.add_argument(
        "--sweep", action="store_true", help="tune each baseline's target; report the cheapest that meets --goal"
    )
    sim.add_argument("--goal", type=float, default=0.99, help="SLO attainment goal for --sweep")
    sim.add_argument("--start", type=float, default=0.0, metavar="S", help="trace window start (seconds)")
    sim.add_argument(
        "--end", type=float, default=None, metavar="S", help="trace window end (ServeGen default: start + 1 h)"
    )
    sim.add_argument(
        "--judge-from",
        type=float,
        default=0.0,
        metavar="S",
        help="summarize from this many seconds into the window on (policies learn from what comes before)",
    )
    sim.add_argument("--time-scale", type=float, default=1.0)
    sim.add_argument("--rate-scale", type=float, default=1.0)
    sim.add_argument("--lengths-from", default=None, help="token lengths for ServeGen synthesis from this trace")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--model-seed",
        type=int,
        default=None,
        metavar="N",
        help="fluid mode: seed of the model's own draws (load table, gauges), apart from the arrivals' "
        "(default: --seed); run several to see how much a result owes to them",
    )
    sim.add_argument("--min-replicas", type=int, default=defaults.MIN_REPLICAS)
    sim.add_argument("--max-replicas", type=int, default=defaults.MAX_REPLICAS)
    sim.add_argument("--initial-replicas", type=int, default=defaults.INITIAL_REPLICAS)
    sim.add_argument("--scrape-interval", type=float, default=defaults.SCRAPE_INTERVAL_S, metavar="S")
    sim.add_argument(
        "--clock-phase",
        type=float,
        default=0.0,
        metavar="S",
        help="first scrape this many seconds into the trace (control loops follow); in a cluster they are "
        "not aligned with the traffic, and threshold policies can turn on it: run several",
    )
    sim.add_argument("--jobs", type=int, default=1, help="policies simulated in parallel processes")
    sim.add_argument("--out", default=None, metavar="DIR", help="write records (parquet), summary.json and plots here")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=_simulate)

    db = sub.add_parser("dashboards", help="the monitoring mixin: dashboards, recording rules and alerts")
    db_sub = db.add_subparsers(dest="dashboards_command", required=True)
    dbb = db_sub.add_parser(
        "build",
        help="compile the mixin: prometheus-rules.yaml, a PrometheusRule, dashboards and "
        "their Grafana sidecar ConfigMaps",
    )
    dbb.add_argument("--out", default="dashboards/built", metavar="DIR")
    dbb.add_argument(
        "--slo-from",
        default=None,
        metavar="autoscaler.yaml",
        help="each target's SLO thresholds from the autoscaler's config (one definition for both)",
    )
    dbb.add_argument("--namespace", default="monitoring", help="namespace of the PrometheusRule and ConfigMaps")
    dbb.add_argument(
        "--docs", default=None, metavar="DIR", help="also write dashboards.md and metrics.md (the repository's: docs)"
    )
    dbb.set_defaults(func=_dashboards_build)

    au = sub.add_parser("autoscale", help="the predictive autoscaler: Prometheus in, Kubernetes (or advice) out")
    au.add_argument(
        "--config", required=True, metavar="autoscaler.yaml", help="targets, SLOs, bounds, capacity, actuators"
    )
    au.add_argument("--once", action="store_true", help="one pass over every target, then exit")
    au.set_defaults(func=_autoscale)

    co = sub.add_parser("console", help="the Streamlit console: cost per token, capacity planner, autoscaler, SLOs")
    co.add_argument("--prometheus", default="http://127.0.0.1:9090", metavar="URL")
    co.add_argument("--alertmanager", metavar="URL")
    co.add_argument("--decision-log", metavar="FILE", help="the autoscaler's JSON-lines decision log")
    co.add_argument("--host", default="127.0.0.1")
    co.add_argument("--port", type=int, default=8501)
    co.set_defaults(func=_console)

    k8s = sub.add_parser("k8s", help="Kubernetes manifests: vLLM serving from a profile (kustomize)")
    k8s_sub = k8s.add_subparsers(dest="k8s_command", required=True)
    kr = k8s_sub.add_parser(
        "render", help="write a kustomize overlay whose vLLM arguments, GPUs and probes come from a profile"
    )
    from headroom.k8s import add_arguments as k8s_arguments

    k8s_arguments(kr)
    kr.set_defaults(func=_k8s_render)

    pl = sub.add_parser(
        "plan", help="the capacity planner: replicas, GPUs and cost per profile for a traffic and an SLO"
    )
    from headroom.plan import add_arguments

    add_arguments(pl)
    pl.set_defaults(func=_plan)

    lt = sub.add_parser("loadtest", help="Locust load campaigns against OpenAI-compatible endpoints")
    lt_sub = lt.add_subparsers(dest="loadtest_command", required=True)
    run = lt_sub.add_parser("run", help="run a campaign file headless, locally or with Locust workers")
    run.add_argument("campaign", metavar="CAMPAIGN.yaml")
    run.add_argument(
        "--workers", type=int, default=0, help="a Locust master with this many worker processes (0: one process)"
    )
    run.add_argument("--out", default=None, metavar="DIR", help="results folder (default results/<campaign file name>)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--quiet", action="store_true", help="no Locust output or progress line")
    run.set_defaults(func=_loadtest_run)
    sw = lt_sub.add_parser(
        "sweep", help="find the highest request rate that meets the campaign's SLO; write a capacity file"
    )
    sw.add_argument("campaign", metavar="CAMPAIGN.yaml", help="target, model, lengths and SLO (its shape is replaced)")
    sw.add_argument("--goal", type=float, default=0.99, help="SLO attainment to reach (default 0.99)")
    sw.add_argument("--probe-seconds", type=float, default=60.0, help="length of each constant-rate probe")
    sw.add_argument("--start-rate", type=float, default=1.0, metavar="RPS")
    sw.add_argument("--max-rate", type=float, default=1000.0, metavar="RPS")
    sw.add_argument("--tolerance", type=float, default=0.05, help="stop bisecting within this fraction")
    sw.add_argument("--replicas", type=int, default=1, help="replicas behind the target (capacity is per replica)")
    sw.add_argument("--workers", type=int, default=0)
    sw.add_argument("--out", default=None, metavar="DIR")
    sw.add_argument("--json", action="store_true")
    sw.set_defaults(func=_loadtest_sweep)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sys.exit(args.func(args))
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except (ValueError, OSError, RuntimeError) as err:  # config, profile and start-up errors name what is wrong
        print(f"headroom {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
