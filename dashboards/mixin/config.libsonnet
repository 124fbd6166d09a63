// Everything a user may change: selectors, label names, SLOs, burn-rate windows, prices, thresholds, runbook URLs.
// Override as with any mixin: (import 'mixin.libsonnet') + { _config+:: { vllmSelector: 'job="my-vllm"' } }.
{
  _config+:: {
    // what each exporter's series carry
    vllmSelector: 'job="vllm"',
    dcgmSelector: 'job="dcgm"',
    gatewaySelector: 'job="gateway"',
    autoscalerSelector: 'job="autoscaler"',
    modelLabel: 'model_name',  // vLLM's label naming a served model; the gateway's `model` is copied to it
    clusterLabel: 'cluster',
    namespaceLabel: 'namespace',

    // one SLO definition per model (the autoscaler's config holds the same: `headroom dashboards build
    // --slo-from autoscaler.yaml` fills sloByModel from it)
    slo: {
      ttftSeconds: 1,  // time to first token, per request
      tpotSeconds: 0.05,  // mean time per output token, per request (the autoscaler's itl_s)
      latencyObjective: 0.99,  // share of requests within each latency threshold
      availabilityObjective: 0.999,  // share of requests that end without an engine error
    },
    sloByModel: {},  // model name -> fields of `slo` that differ
    // the gateway counts each answered request as meeting or missing the SLO (headroom_gateway_slo_requests_total,
    // at the thresholds of its own config, which `headroom up` and `headroom k8s render` set from the same SLO):
    // the latency SLIs use those counts, and vLLM's histograms only for models the gateway does not front and only
    // where a threshold is a bucket edge. false: histograms only, and a threshold off the edges fails the build
    gatewaySli: true,

    // SLI windows recorded, and the multi-window multi-burn-rate pairs (Google SRE workbook, table 5-8)
    sloWindows: ['5m', '30m', '1h', '2h', '6h', '1d', '3d'],
    // the range each named window covers: its name, unless given here (the local stack compresses time: `headroom
    // up` records "1h" over 5m so that a demo of minutes shows what production shows over hours)
    sloWindowDurations: {},
    burnRates: [
      { long: '1h', short: '5m', factor: 14.4, severity: 'critical' },
      { long: '6h', short: '30m', factor: 6, severity: 'critical' },
      { long: '1d', short: '2h', factor: 3, severity: 'warning' },
      { long: '3d', short: '6h', factor: 1, severity: 'warning' },
    ],

    // cost: the autoscaler exports each target's price and GPUs per replica; these stand in where it does not run
    gpuPricePerHour: 12.29,
    gpusPerReplica: 1,
    costWindow: '1h',
    costRuleIntervalSeconds: 30,  // the cost rules' own evaluation interval: dollars spent are summed sample by sample
    // a prompt token's share of GPU work against an output token's, for tenants' cost shares: prefill runs many
    // tokens per step, decode one per sequence (Llama-3.1-8B on an H100 in Headroom's engine model: about 0.15)
    promptTokenWeight: 0.15,

    // alert thresholds
    kvCacheFull: 0.95,  // KV cache use at which preemptions are expected
    gatewayShedRatio: 0.05,  // share of requests answered 429 over 5 m
    queueGrowingWaiting: 10,  // waiting requests per model, with the autoscaler at its maximum
    gpuTempCelsius: 85,
    gpuClockDropRatio: 0.85,  // a busy GPU's SM clock against its highest of the day: below it, it throttles
    gpuBusyUtilPercent: 50,
    costBudgetPerMillionOutputTokens: 5,  // dollars
    idleGpuShare: 0.5,
    coldStart: '5m',  // how long replicas may take to be ready: a cold start with margin
    absentJobs: ['vllm', 'dcgm', 'gateway'],  // exporters whose absence pages; add 'autoscaler' where it runs

    runbookUrlBase: 'https://github.com/headroom-llm/headroom/blob/main/docs/runbooks/',
  },
}
