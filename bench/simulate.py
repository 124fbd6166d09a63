"""Simulator benchmarks: speed on one core, fluid against request-level, and tuned baseline tables."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from autoscaler.sim.policies import parse_policy
from autoscaler.sim.report import table
from autoscaler.sim.run import (
    SimulateArgs,
    _cached_table,
    _lengths,
    fluid_input,
    fluid_run,
    load_trace,
    policy_context,
    run_one,
    sim_config,
)
from autoscaler.sim.sweep import sweep
from loadgen.workloads.servegen import load_servegen, window_counts

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces"
CONV = str(TRACES / "AzureLLMInferenceTrace_conv.csv")
CODE = str(TRACES / "AzureLLMInferenceTrace_code.csv")
MLARGE = str(TRACES / "servegen" / "m-large")
SETTING = (
    "Llama-3.1-8B on H100 (profile llama-3.1-8b-h100, on-demand $12.29 per GPU-hour), SLO: TTFT <= 1 s and "
    "mean ITL <= 50 ms, cold start 90 s, Prometheus scrape 15 s with 60 s rate windows"
)


def _timed(fn):
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


REFERENCE_REQUEST_CPU_S = 3.4  # the request-level speed run on 2026-12-02's host: how fast a host is, run against run


def speed_section() -> str:
    rows = []
    args = SimulateArgs(trace=CONV, policies=["hpa:gpu_util=70"])
    result, cpu = _timed(lambda: run_one(args, "hpa:gpu_util=70"))
    rows.append(
        ("request-level, Azure conv 1 h (19,366 requests)", "hpa:gpu_util=70", cpu, None, "<= 10 s", result.summary)
    )
    result, cpu = _timed(lambda: run_one(replace(args, mode="fluid"), "hpa:gpu_util=70"))
    rows.append(("fluid (cohort replicas), Azure conv 1 h", "hpa:gpu_util=70", cpu, None, "-", result.summary))
    fast = replace(args, rate_scale=4.0)
    result, cpu = _timed(lambda: run_one(fast, "hpa:gpu_util=70"))
    rows.append(
        ("request-level, Azure conv x4 1 h (77,464 requests)", "hpa:gpu_util=70", cpu, None, "-", result.summary)
    )
    result, cpu = _timed(lambda: run_one(replace(fast, mode="fluid"), "hpa:gpu_util=70"))
    rows.append(("fluid (cohort replicas), Azure conv x4 1 h", "hpa:gpu_util=70", cpu, None, "-", result.summary))
    fluid = SimulateArgs(trace=MLARGE, policies=[], mode="fluid", lengths_from=CONV, max_replicas=200)
    config = sim_config(fluid)
    _, table_cpu = _timed(lambda: _cached_table(fluid, config, _lengths(fluid.lengths_from)))
    _, counts_cpu = _timed(lambda: window_counts(load_servegen(MLARGE), 15.0, fluid.seed))  # uncached, for the record
    feed = fluid_input(fluid, config, None)
    for spec in ("static:30", "hpa:running=64", "keda", "kpa:16", "oracle"):
        policy = parse_policy(spec, policy_context(fluid, config, feed.future, feed.capacity_rps))
        result, cpu = _timed(lambda: fluid_run(config, policy, feed))  # noqa: B023
        rows.append(
            ("fluid, ServeGen m-large 14 days (237 M requests)", spec, cpu, cpu + counts_cpu, "<= 60 s", result.summary)
        )
    lines = [
        "| run | policy | CPU seconds | with counts synthesized | goal | attainment | GPU-hours |",
        "|---|---|---|---|---|---|---|",
    ]
    for what, spec, cpu, first, goal, s in rows:
        lines.append(
            f"| {what} | {spec} | {cpu:.1f} | {'-' if first is None else f'{first:.1f}'} | {goal} | "
            f"{s['slo_attainment']:.2%} | {s['gpu_hours']:,.1f} |"
        )
    return "\n".join(
        [
            "### Speed (one core)",
            "",
            (
                "CPU time of one process (`time.process_time`). The fluid runs use a load table measured once on the engine "
                f"for the length mix ({table_cpu:.1f} CPU-s in this run, 0 when cached) and per-step arrival counts: the 237 M "
                f"arrivals synthesized from the ServeGen windows exactly as the request-level mode does, binned into 15 s steps "
                f"({counts_cpu:.1f} CPU-s once per trace, seed and scaling; cached on disk like the table)."
            ),
            "",
            *lines,
            "",
            (
                "The hosts these sessions get differ in speed by up to 2x (see the header for this run's): the request-level row "
                f"took {rows[0][2]:.1f} CPU-s in this run and {REFERENCE_REQUEST_CPU_S} on the host of 2026-12-02, with the "
                "same code. Read a row against the request-level one of the same run. The cohort replicas a request trace "
                "runs on in fluid mode cost about the same per 1 s step whatever the rate, where the request level's cost "
                "grows with the requests and engine steps: at 1x it is the faster of the two, at 4x the cohorts are (the "
                "rows above). Days of traffic are the load tables' part: ServeGen's 14 days in well under a minute."
            ),
        ]
    )


CROSS_SCALE = 4.0  # the request traces' rate in the cross-check
CROSS_CASES = [  # static ones, every reactive baseline at its setting tuned on Azure conv, and the defaults of KEDA and the HPA
    *(
        (CONV, CROSS_SCALE, spec)
        for spec in (
            "static:3",
            "hpa:gpu_util=70",
            "hpa:running=32",
            "kpa:16",
            "keda:5",
            "hpa:waiting=5",
            "hpa:gpu_util=80",
        )
    ),
    *(
        (CODE, CROSS_SCALE, spec)
        for spec in ("static:2", "static:4", "hpa:gpu_util=70", "hpa:running=32", "kpa:16", "keda:5")
    ),
]
# the regime the ServeGen table is simulated in: an hour of m-large (day 8, a rising hour), arrivals synthesized from the
# windows at a quarter of the rate so the request-level runs stay short; fluid counts are the same process, binned
SERVEGEN_SLICE = ((7 * 144 + 129) * 600.0, 3600.0, 0.25)
SERVEGEN_CASES = ["static:4", "static:6", "hpa:running=32", "hpa:gpu_util=70", "kpa:16", "oracle"]


COHORT_NOTE = (
    "The cohort replicas, where they part. On fixed fleets they follow the request level where the load tables did "
    "not: code's overloaded static:2 and static:4 come within 0.5 points (the tables: +6.7 and -0.3), because a "
    "request that decodes while a burst's 2,000-token prompts are prefilled beside it decodes in steps that each "
    "carry a chunk, and a cohort's steps do the same. The gauges a policy reads agree at a fixed fleet (15 s "
    "scrapes over the half hour): on conv x4 with 3 replicas, mean GPU utilization 80.0% against the request "
    "level's 80.2% and mean running requests 64.1 against 63.5; with 8 replicas 74.8% against 75.1%; on code x4 "
    "with 4 replicas 29.8% against 29.3% (tests/autoscaler/sim/test_cohort.py "
    "checks a chat mix from light load to near saturation). Knative's KPA reads the same concurrency (the KPA table "
    "below). Since 2026-12-03 (second change that day) a scrape reads the cohort fleet as its step begins: each "
    "replica's gauges as the step before left them, its busy share and the counters up to that instant, as a scrape "
    "at its instant does in the request level (the clocks tick on whole seconds, so this is exact). Before, a scrape "
    "read the step's mean gauges and its busy time to the step's end, the step's own arrivals half in. That was "
    "furthest off for a replica just ready: cold starts (90 s) and controls fall on the scrape grid, so every "
    "replica a policy starts is ready on a scrape's instant, where the request level reads it idle (it has served "
    "nothing yet) and the step's mean read it as busy as the rest (least-outstanding routing fills it in its first "
    "second). The HPA on utilization counts that idle reading in the mean, so in the request level it waits one "
    "more sync before each further step of a ramp: conv hpa:gpu_util=70 added a replica every 120 s there and every "
    "105 s in the cohort fleet. Over the clock phases 0, 5 and 10 s (the cross-check's before the third change "
    "that day), conv hpa:gpu_util=70 went from +11.9% of GPU-hours to +0.1% and hpa:gpu_util=80 from +22.8% to "
    "+0.3%. On the code trace, whose bursts of up to 252 requests come within one second, a scrape had read half "
    "of the burst after it: code hpa:running=32 went from -12.1% to -4.0% and keda:5 from -4.7% to -3.8%; on conv, "
    "hpa:waiting=5, keda:5 and hpa:running=32 from -6.8%, -8.2% and -6.3% to -0.1%, -0.5% and -2.2%. The idle read "
    "of a replica ready on the dot alone (the rest read as before) took 8 of 13 cases within both goals; both "
    "together 12. Since 2026-12-03 (fourth change that day) a prefill chunk's attention counts the queue's prompts "
    "by their squared lengths: a token at position i of its prompt attends i tokens in whichever chunk it is "
    "computed, so a chunk's attention work is the sum of L(L+1)/2 over its prompts, and the queue's mean length alone "
    "underestimated it where the lengths spread. Over a backlog of 300 prompts of 300 and 6,000 tokens in turn the "
    "engine takes 28.67 s; the step-time model on the chunk gives 28.67 s with the squared lengths and 27.23 s with "
    "the mean. On code x4 at a fixed fleet of 4 with 1 s scrapes, the cohort fleet had prefilled a burst's backlog "
    "at 139k prompt tokens a second against the request level's 134k, so it drained it about a second sooner and "
    "read fewer requests running and waiting (20.1 and 14.2 on average against 20.8 and 16.8). And a scrape now reads "
    "the queue as it stands at its step's end (what is left of it, and the step's own arrivals served in it for "
    "their time queued), not the step's mean queue, which counted the step's arrivals from their arrival on: in "
    "a burst's first seconds it had read the request level's queue a second late (74 where the engine held 140). "
    "With both, every cohort case above is within 0.7 points of attainment and 3.3% of GPU-hours; code "
    "hpa:running=32 went from +0.7 points and -5.4% to -0.0 and -0.8%, code static:2 and static:4 from +1.6 "
    "points each to +0.1 and +0.5, and at the fixed fleet of 4 with 15 s scrapes its scrapes read 21.5 running "
    "and 15.7 waiting against 22.0 and 16.6 (20.4 and 14.1 before). The squared lengths alone took 13 of 13 cases "
    "too, with conv keda:5 at -1.2 points and code keda:5 at -4.0%, where the read at the step's end has them at "
    "-0.7 and -3.3%. Also tried and left out: a cohort decoding from when its first tokens come in the step "
    "(their TTFTs) rather than from the step's start; it made the fixed fleets too good (code static:4 60.6% "
    "against the request level's 55.0%, static:2 14.3% against 10.7%). Tried earlier and left out: reading the waiting count as a Poisson "
    "draw around the cohort mean (the count of an infinite-server queue), for KEDA, whose ceil(waiting / 5) at "
    "one replica turns on a single scrape's integer count (7 in the request level where the cohort mean read 2.8): "
    "over the 3 phases, conv keda:5 -2.6 to -2.4 points and code keda:5 -3.8% to -5.6% of GPU-hours, 11 cases "
    "within both goals against 12."
)

CROSS_NOTE = (
    "The load tables, where they part. On the ServeGen slice, the regime of the 14-day table, every policy is within 2 points and 5% "
    "of GPU-hours (one fluid seed alone can miss: hpa:gpu_util=70's 5 runs span 17.31 to 20.49 GPU-h around 19.32). "
    "Both modes show a policy the fleet alike: GPU utilization is the busy share since the previous scrape, and a "
    "control that fires at a scrape's instant reads the scrape before it. Since 2026-12-02 (second change that day) "
    "a request trace's fluid replicas read each period of one length mix with that period's own table. Over conv's "
    "first half hour the answers shorten from about 255 to 140 tokens, and the engine decodes a batch of long answers "
    "and short prompts at another pace than the half hour's mean mix at the same load: held at 270 requests in a "
    "closed loop, it decodes at 54 ms per token with the first three minutes' lengths and at 70 ms with the half "
    "hour's. With one table for the half hour, every conv case's attainment read below the request level's, by 0.6 "
    "to 8.6 points; with the periods they are within 0.0 to 6.1 points of it: static:3 -0.6 to +0.1, hpa:gpu_util=70 -1.8 to "
    "-0.4, hpa:running=32 -2.5 to -1.1 (and +6.0% to +0.7% of GPU-hours), hpa:gpu_util=80 -2.2 to -0.4, kpa:16 -1.0 "
    "to -0.0, keda:5 -8.6 to -6.1, hpa:waiting=5 -5.6 to -4.3 (+7.6% to +6.6%). The concurrency Knative's KPA reads "
    "under a fixed fleet now follows the request level's minute by minute (the KPA table below). Code's mix holds "
    "(one period), so its rows are as they were. Since 2026-12-02 (third change that day) a fluid replica's "
    "completions follow its state as it was about one residence time ago (the time a request spends inside at half "
    "its SLO capacity, by Little's law: a few seconds on conv, under half a second on code): a burst's requests stay "
    "inside until served, as on the engine, where before they began to leave in the second they came. With "
    "completions at once, kpa:16 on conv cost 9.5% less than in the request level: the KPA panics when 6 s of "
    "concurrency ask twice the ready replicas, it cycles down to 3 replicas on conv and panics back up, and at a "
    "fixed fleet of 4 the fluid mode's 6 s means passed 96 (the panic line at 3 ready) in 0.7% of ticks against the "
    "request level's 1.7%. With the lag they do in 1.8%, and kpa:16 is within 0.1% of the request level's GPU-hours; "
    "at a fixed fleet of 3 the share is 8.2% against 8.0%. The lag moved the other cases by at most 0.5 points and "
    "1.7% of GPU-hours (conv hpa:running=32 +0.7% to +2.4%, hpa:gpu_util=70 -2.0% to -3.2%, code kpa:16 -9.3% to "
    "-8.1%); on ServeGen's 15 s steps, long against the lag, it all but vanishes. A lag of each state's own "
    "residence time (longer near saturation) gave as many cases within both goals; the residence time at the full "
    "SLO capacity, a longer lag, took conv kpa:16 and hpa:running=32 to +16% and +10.5%. What is left: "
    "(1) the load tables' scrapes and controls read the fleet at the end of the step they fall in, so within a step "
    "they see its arrivals up to a step early (1 s on a request trace, 15 s on ServeGen's steps; the cohort fleet "
    "reads it as the step begins, above); read at the "
    "step's start instead (late by up to a step), ServeGen's kpa:16 took 30% more GPU-hours. A first cut at reading "
    "between the two, at each event's instant (the counters and the KPA's concurrency interpolated within the step, "
    "the gauges of the nearer end), took ServeGen's kpa:16 to +2.2% but moved threshold cases across the goal (conv "
    "hpa:gpu_util=70 about -3% to +7.4%, code keda:5 about -3% to +5.0%). On 2026-12-03 each event was read at the "
    "nearer end of its step, before that step's arrivals: exact on a request trace, whose clocks tick on whole "
    "seconds. It did no better, 11 cases within both goals against 12 (conv hpa:gpu_util=70 -3.1% to -6.4%, kpa:16 "
    "+0.1% to -3.5%, code keda:5 -2.9% to +1.1%, hpa:running=32 +10.4 to +8.4 points, ServeGen kpa:16 -1.9% to "
    "+15.9%), so the early read offsets errors elsewhere rather than being one; it is left as it is. "
    "(2) overload after a scale-down. keda:5 and hpa:waiting=5 on conv cycle between 1 and 20 replicas, and after "
    "each scale-down the one replica left floods within 30 s in the request level: in a step from 8 to 22 req/s (its "
    "saturated rate is 17) its requests' mean ITL is 107 ms at once, where the load table holds 39 ms for a steady "
    "batch of 142. So waiting requests show there a sync or two earlier than in the fluid mode, whose throughput "
    "follows its batch at once. keda:5 cycles with a period of about 7.5 minutes in the request level and 8.5 in the "
    "fluid mode, so the half hour ends in a different phase of a cycle. Two models of that were tried (with one "
    "table per trace) and left out: service by age (continuous batching moves a batch in lockstep, so a new request "
    "finishes only once it has aged), with and without steps stretched toward the saturated engine's while prompts "
    "join faster than the batch's steady rate. They follow the step (433 against 438 requests held 30 s into it), "
    "but under Poisson arrivals they hold more than the table's steady state near capacity (132 to 212 against 113 "
    "at 15.5 req/s). With the stretch, keda:5 and hpa:waiting=5 came within 2.3 and 0.7 points, but at +8.7% and "
    "+10% of GPU-hours, and the other conv cases lost 0.6 to 1.1 points. "
    "(3) conv hpa:gpu_util=80 turns on one decision (measured with one table): at 195 s the mean utilization of its "
    "2 replicas reads 87.8% in the request level and 88.9% in the fluid mode, and the HPA's 10% band ends at 88.0%; "
    "the fluid mode scales and holds 3 replicas where the request level holds 2 (1.43 against 1.10 GPU-h). Over 4 "
    "draws of the x4 arrivals the request level itself gave 1.10, 1.10, 1.43 and 1.10. (4) the request level turns "
    "on the clock phase where a policy's metric hovers at its threshold: hpa:waiting=5 spans 6.47 to 7.84 GPU-h over "
    "the three phases, keda:5 7.09 to 7.89, and on the code trace hpa:running=32 2.82 to 4.06; a 5% goal is tighter "
    "than the request level's own spread there. (5) the code trace at 4x, whose arrivals come in bursts of up to 252 "
    "requests in one second with 2,000-token prompts, on overloaded fleets (attainment under 65%): static:2 +6.7 and "
    "hpa:running=32 +10.4 points, because requests that decode while a burst's long prompts are prefilled beside "
    "them decode in slow steps, which the fluid mode does not see; hpa:gpu_util=70 -4.4 points and -9.8% of "
    "GPU-hours, kpa:16 -8.1%. A model of the slow steps was tried and left out: the share of requests meeting ITL by "
    "how many prefills are queued behind them when they start decoding (measured on the engine), with the load table "
    "measured up to 0.95 of the saturated rate, gave static:2 +5.5 and keda:5 +3.8 points but hpa:gpu_util=70 +6.0 "
    "points and +21% GPU-hours, and did worse on the fixed fleets. The code table also has a gap: its SLO capacity "
    "(4.4 req/s) is set by a tail of long prompts far below the saturated rate (16.8 req/s), so it held no rows from "
    "5.3 to 16.8 req/s and a fluid replica read a straight line across them. Rows measured there (at 0.4 to 0.95 of "
    "the saturated rate; 2026-12-03) took the code cases to 0 of 6 within both goals (static:2 +8.0 and static:4 "
    "+3.2 points, hpa:running=32 -21% and keda:5 -8.1% of GPU-hours): at a held count the steady engine completes "
    "far more than it does after a burst, whose prompts keep every decode step slow (in the request level 111 "
    "requests in 2 s on static:2 leave the next 15 s of requests at a mean ITL of 0.24 s, none within the SLO, "
    "where the fluid mode met 40% to 60% of them). Two more models were tried with one table per "
    "trace and left out: the engine's step-time model on a state's mean batch, scaling each replica's ITL by its own "
    "prefill flux (it matches the engine's mean step within 7% on batches of 112 to 314 requests, but moved no case "
    "across the goal: conv hpa:running=32 -2.5 to -2.2 points, code static:2 +6.8 to +5.7, keda:5 and hpa:waiting=5 "
    "a point further off), and w measured nearer saturation (at 0.65 and 0.8 of capacity conv attainment came closer "
    "but GPU-hours moved away, hpa:running=32 +5.4% and -10.2%). Within a period, one work weight per request is a "
    "projection of two loads (prompt and output tokens) onto one state; it is measured at half a replica's SLO "
    "capacity, and near saturation a prompt token weighs more ({near_saturation:.2f} at 0.8 of capacity on conv's "
    "whole mix, model seed 0)."
)


MODEL_SEEDS = range(5)  # load-table runs per case: the model's own draws (load table, gauges) over the same arrivals
# where the scrape and control clocks stand against the trace's start: a threshold policy turns on it (a metric
# leaves the HPA's tolerance band one sync earlier or later, and its fleet is then in another phase of a cycle), so
# each mode runs at several and the means are compared. On the request traces every whole second of the 15 s scrape
# interval: their chaotic cases spread by 5 points and 10% of GPU-hours over the phases, and 3 phases left a mean
# too loose for goals of 2 points and 5%. ServeGen's request-level hour costs minutes a run; its cases spread little.
SCRAPE_INTERVAL_S = SimulateArgs.scrape_interval_s  # the default every case runs with
REQUEST_PHASES = tuple(float(p) for p in range(int(SCRAPE_INTERVAL_S)))
SERVEGEN_PHASES = (0.0, 5.0, 10.0)


def _spread(values: np.ndarray, fmt: str) -> str:
    return f"{values.mean():{fmt}} ({values.min():{fmt}} to {values.max():{fmt}})"


def _summary(args: SimulateArgs, spec: str) -> dict:
    return run_one(args, spec).summary


def _case_runs(args: SimulateArgs, models: tuple[str, ...], phases: tuple[float, ...]) -> dict[str, list[SimulateArgs]]:
    """The runs of one case: request-level and cohort replicas at every clock phase (cohorts draw nothing: the same
    arrivals give the same run), load tables at 5 model seeds over phases spread through the interval."""
    runs = {"request": [replace(args, clock_phase_s=phase) for phase in phases]}
    for model in models:
        fluid = replace(args, mode="fluid", fluid_model=model)
        runs[model] = (
            [replace(fluid, clock_phase_s=phase) for phase in phases]
            if model == "cohort"
            else [
                replace(fluid, model_seed=seed, clock_phase_s=phase)
                for seed, phase in zip(MODEL_SEEDS, _table_phases(phases))
            ]
        )
    return runs


def _table_phases(phases: tuple[float, ...]) -> list[float]:
    """The clock phase of each load-table run (one per model seed): spread through the phases, in turn."""
    stride = max(1, len(phases) // len(MODEL_SEEDS))
    return [phases[seed * stride % len(phases)] for seed in MODEL_SEEDS]


def _phases_text(phases) -> str:
    return ", ".join(f"{p:g}" for p in phases)


def _cross_rows(label: str, spec: str, summaries: dict[str, list[dict]]) -> list[str]:
    """One row per fluid model against the same request-level runs."""
    column = lambda runs, key: np.array([r[key] for r in runs])
    request_att, request_gpu = column(summaries["request"], "slo_attainment"), column(summaries["request"], "gpu_hours")
    rows = []
    for model, fluid in summaries.items():
        if model == "request":
            continue
        att, gpu = column(fluid, "slo_attainment"), column(fluid, "gpu_hours")
        d_att, d_gpu = 100 * (att.mean() - request_att.mean()), 100 * (gpu.mean() / request_gpu.mean() - 1)
        within = "yes" if abs(d_att) <= 2 and abs(d_gpu) <= 5 else "no"
        rows.append(
            f"| {label} | {spec} | {model} | {_spread(request_att, '.2%')} | {_spread(att, '.2%')} | "
            f"{d_att:+.1f} | {_spread(request_gpu, '.2f')} | {_spread(gpu, '.2f')} | {d_gpu:+.1f}% | {within} |"
        )
    return rows


def _prompt_weights(trace: str) -> list[float]:
    """The fluid model's prompt-token weights for a trace's length mix periods, per model seed (tables cached by the runs)."""
    args = SimulateArgs(
        trace=trace, policies=[], rate_scale=CROSS_SCALE, end_s=1800.0, mode="fluid", fluid_model="table"
    )  # the cases' arrivals
    workload = load_trace(args)
    feeds = [
        fluid_input(seeded, sim_config(seeded), workload)
        for seeded in (replace(args, model_seed=seed) for seed in MODEL_SEEDS)
    ]
    return [table.prompt_token_weight for feed in feeds for table in (feed.tables or [feed.table])]


def _periods_text(trace: str) -> str:
    """A trace's length-mix periods over the cases' half hour: each one's mean prompt and answer lengths."""
    from autoscaler.sim.mix_periods import mix_periods

    w = load_trace(SimulateArgs(trace=trace, policies=[], rate_scale=CROSS_SCALE, end_s=1800.0))
    periods = mix_periods(w.arrival_s, w.prompt_tokens, w.output_tokens)
    means = [
        f"{w.prompt_tokens[mine].mean():,.0f} and {w.output_tokens[mine].mean():,.0f}"
        for mine in (periods.period_of_request == k for k in range(periods.count))
    ]
    return f"{Path(trace).stem}, {periods.count} period{'s' if periods.count > 1 else ''} (prompt and answer means {', then '.join(means)} tokens)"


def _prompt_weight_near_saturation(trace: str, share: float = 0.8) -> float:
    """The same weight measured at `share` of a replica's SLO capacity (model seed 0): how far one weight bends."""
    from autoscaler.capacity.load_table import prompt_token_weight

    args = SimulateArgs(
        trace=trace, policies=[], rate_scale=CROSS_SCALE, end_s=1800.0, mode="fluid", fluid_model="table"
    )
    config = sim_config(args)
    feed = fluid_input(args, config, load_trace(args))
    prompts, outputs = feed.lengths.sample(4000, np.random.default_rng(0))
    return prompt_token_weight(config.profile, prompts, outputs, share * feed.capacity_rps(), 0)


def cross_rows(jobs: int = 2) -> list[str]:
    """Every case: the cohort replicas and the load tables on the request traces, the load tables on ServeGen; the
    runs of all cases in `jobs` processes (results are the same either way)."""
    cases = []
    for trace, scale, spec in CROSS_CASES:
        args = SimulateArgs(trace=trace, policies=[spec], rate_scale=scale, end_s=1800.0, max_replicas=20)
        cases.append(
            (
                f"{Path(trace).stem} x{scale:g}, first 30 min",
                spec,
                _case_runs(args, ("cohort", "table"), REQUEST_PHASES),
            )
        )
    start, length, scale = SERVEGEN_SLICE
    for spec in SERVEGEN_CASES:
        args = SimulateArgs(
            trace=MLARGE,
            policies=[spec],
            rate_scale=scale,
            start_s=start,
            end_s=start + length,
            lengths_from=CONV,
            max_replicas=60,
            initial_replicas=4,
        )
        cases.append(
            (
                f"ServeGen m-large x{scale:g}, day 8 {start % 86400 / 3600:.1f} h + 1 h",
                spec,
                _case_runs(args, ("table",), SERVEGEN_PHASES),
            )
        )
    planned = [run for _, _, runs in cases for kind in runs.values() for run in kind]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        done = iter(list(pool.map(_summary, planned, [run.policies[0] for run in planned])))
    rows = []
    for label, spec, runs in cases:
        rows += _cross_rows(label, spec, {kind: [next(done) for _ in kind_runs] for kind, kind_runs in runs.items()})
    return rows


def crosscheck_section() -> str:
    lines = [
        (
            "| trace | policy | fluid replicas | request-level attainment, mean over the clock phases (range) | "
            "fluid attainment, mean (range) | difference (points) | "
            "request GPU-h, mean (range) | fluid GPU-h, mean (range) | difference | within both goals |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = cross_rows()
    lines += rows
    tally = lambda model, servegen: [
        r.endswith("| yes |") for r in rows if f"| {model} |" in r and ("ServeGen" in r) == servegen
    ]
    counts = (
        f"Within both goals: cohort replicas {sum(tally('cohort', False))} of {len(tally('cohort', False))} "
        f"request-trace cases; load tables {sum(tally('table', True))} of {len(tally('table', True))} ServeGen "
        f"cases and {sum(tally('table', False))} of {len(tally('table', False))} request-trace cases."
    )
    servegen_phases = _phases_text(SERVEGEN_PHASES)
    weights = {Path(trace).stem: _prompt_weights(trace) for trace in dict.fromkeys(t for t, _, _ in CROSS_CASES)}
    measured = "; ".join(f"{name}: {min(w):.3f} to {max(w):.3f}" for name, w in weights.items())
    periods = "; ".join(_periods_text(trace) for trace in dict.fromkeys(t for t, _, _ in CROSS_CASES))
    return "\n".join(
        [
            "### Fluid mode against request-level",
            "",
            (
                f"Goal: within 2 points of SLO attainment and 5% of GPU-hours on overlapping cases. Each case runs "
                f"request-level with the scrape and control clocks started at each whole second of the {SCRAPE_INTERVAL_S:g} s scrape interval "
                f"({REQUEST_PHASES[0]:g} to {REQUEST_PHASES[-1]:g} s) into a request trace, at {servegen_phases} s into "
                "ServeGen's hour (`--clock-phase`: in a cluster they are not aligned with the traffic, and a threshold policy's "
                "fleet turns on them), and in fluid mode over the same arrivals with each of its two replica models; "
                "differences are of the means. Since 2026-12-03 (third change that day) a request trace runs 15 phases, not 3: "
                "conv keda:5 read -2.6 points over 0, 5 and 10 s and +0.1 over the other 12. 'cohort' (the default on a request trace since 2026-12-03, "
                "autoscaler.sim.cohort): the requests whose first token comes in the same 1 s step decode together in "
                "lockstep, one token per engine step, in steps timed by the engine's step-time model on the cohorts' mean "
                "batch; a FIFO queue of prompt tokens per replica is prefilled in the token budget left beside the decodes, "
                "within the sequence and KV room, and every decode step that carries a chunk is that much longer; a cohort "
                "loses the requests whose answers end (the output lengths of the steps its requests arrived in). It draws "
                "nothing, so it runs once per clock phase. 'table' (ServeGen's days, whose 15 s steps outlast a request's "
                "time inside, and a request trace with `--fluid-model table`): a replica's state is the work it holds, "
                f"stepped through a load table measured on the engine, run {len(MODEL_SEEDS)} times with model seeds "
                f"{MODEL_SEEDS.start}-{MODEL_SEEDS.stop - 1} (`--model-seed`: the table's length sample and engine runs, the "
                f"gauge draws) at phases spread through the interval ({_phases_text(_table_phases(REQUEST_PHASES))} s on a "
                f"request trace; {_phases_text(_table_phases(SERVEGEN_PHASES))} s on ServeGen). On a request trace its replicas hold work, not requests: each request "
                "weighs (output + w x prompt) tokens over the trace's mean, with w measured on the engine for the mix (the "
                "requests a replica holds per prompt token, over those per output token, at half its SLO capacity; over the "
                f"model seeds and the mix periods, {measured}). Where the mix moves, each period of one mix (5-minute windows "
                f"whose mean prompt and output lengths are within about 22% of each other) has its own table, w and mean: {periods}."
            ),
            "",
            *lines,
            "",
            counts,
            "",
            COHORT_NOTE,
            "",
            CROSS_NOTE.format(near_saturation=_prompt_weight_near_saturation(CONV)),
        ]
    )


def baseline_section(
    trace: str, label: str, mode: str, rate_scale: float = 1.0, jobs: int = 2, lengths_from: str | None = None
) -> str:
    policies = ["static:1", "hpa:gpu_util=70", "hpa:waiting=5", "hpa:running=64", "keda", "kpa:64", "oracle"]
    args = SimulateArgs(
        trace=trace,
        policies=policies,
        mode=mode,
        rate_scale=rate_scale,
        jobs=jobs,
        max_replicas=200,
        lengths_from=lengths_from,
    )
    tuned, _ = sweep(args, 0.99, progress=lambda line: None)
    rel = lambda path: str(Path(path).relative_to(TRACES.parent.parent.parent))
    command = (
        f"headroom simulate --trace ../{rel(trace)} --mode {mode} --sweep --policy {','.join(policies)} --max-replicas 200"
        + (f" --rate-scale {rate_scale:g}" if rate_scale != 1 else "")
        + (f" --lengths-from ../{rel(lengths_from)}" if lengths_from else "")
    )
    return "\n".join([f"### {label}", "", f"`{command}`", "", table([r.summary for r in tuned], markdown=True)])
