// Serving, GPU, autoscaler, cost and scrape-target alerts; leading ones where a trend says more than a threshold.
local promql = import '../lib/promql.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local m = c.modelLabel,
    local alert = function(name, expr, severity, summary, description, forTime=null)
      promql.alert(c, name, expr, severity, summary, description, forTime),
    local vllm = '{%s}' % c.vllmSelector,
    local gw = '{%s}' % c.gatewaySelector,
    local dcgm = '{%s}' % c.dcgmSelector,
    local auto = '{%s}' % c.autoscalerSelector,
    local autoBy(expr) = 'label_replace(%s, "%s", "$1", "target", "(.+)")' % [expr, m],
    local jobs = { vllm: c.vllmSelector, dcgm: c.dcgmSelector, gateway: c.gatewaySelector, autoscaler: c.autoscalerSelector },
    local atMax = autoBy('increase(headroom_autoscaler_decisions_total{%s, reason="max"}[10m])' % c.autoscalerSelector) + ' > 0',
    groups+: [
      {
        name: 'headroom-serving.alerts',
        rules: [
          alert('HeadroomKVCacheFull',
                'max by (%(m)s) (vllm:kv_cache_usage_perc%(v)s) > %(t)g and on (%(m)s) sum by (%(m)s) (rate(vllm:num_preemptions_total%(v)s[5m])) > 0'
                % { m: m, v: vllm, t: c.kvCacheFull },
                'warning', 'KV cache of {{ $labels.%s }} is full and requests are preempted' % m,
                'A replica of {{ $labels.%s }} uses over %g%% of its KV cache and preempts running requests, which then recompute their prompts.' % [m, 100 * c.kvCacheFull], '10m'),
          alert('HeadroomKVCacheFillingUp',
                'max by (%(m)s) (predict_linear(vllm:kv_cache_usage_perc%(v)s[15m], 900)) > 1 and on (%(m)s) max by (%(m)s) (vllm:kv_cache_usage_perc%(v)s) > 0.7'
                % { m: m, v: vllm },
                'warning', 'KV cache of {{ $labels.%s }} will be full within 15 minutes at its current trend' % m,
                'The KV cache use of a replica of {{ $labels.%s }} is over 70%% and its 15-minute trend reaches 100%% within 15 minutes.' % m, '5m'),
          alert('HeadroomQueueGrowingAtMaxReplicas',
                '(sum by (%(m)s) (vllm:num_requests_waiting%(v)s) > %(n)d) and on (%(m)s) (deriv(sum by (%(m)s) (vllm:num_requests_waiting%(v)s)[10m:1m]) > 0) and on (%(m)s) (%(max)s)'
                % { m: m, v: vllm, n: c.queueGrowingWaiting, max: atMax },
                'critical', 'Requests of {{ $labels.%s }} pile up while the autoscaler is at its maximum' % m,
                'More than %d requests of {{ $labels.%s }} wait in the engines, their number rises, and the autoscaler capped its count at max_replicas in the last 10 minutes.' % [c.queueGrowingWaiting, m], '10m'),
          alert('HeadroomGatewayQueueGrowing',
                'sum by (model) (predict_linear(headroom_gateway_queue_depth%(g)s[15m], 900)) > 100 and on (model) sum by (model) (headroom_gateway_queue_depth%(g)s) > 10'
                % { g: gw },
                'warning', 'The gateway queue of {{ $labels.model }} grows toward 100 requests within 15 minutes',
                'More than 10 requests of {{ $labels.model }} wait at the gateway for a backend slot and the 15-minute trend passes 100 within 15 minutes.', '5m'),
          alert('HeadroomGatewayShedding',
                'sum by (model) (rate(headroom_gateway_requests_total{%(g)s, status="429"}[5m])) / sum by (model) (rate(headroom_gateway_requests_total%(gs)s[5m])) > %(r)g'
                % { g: c.gatewaySelector, gs: gw, r: c.gatewayShedRatio },
                'warning', 'The gateway turns away many requests for {{ $labels.model }}',
                'Over %g%% of the requests for {{ $labels.model }} were answered 429 (queue full or waited too long) in the last 5 minutes.' % (100 * c.gatewayShedRatio), '5m'),
          alert('HeadroomBackendsEjected',
                'count by (job, instance) (headroom_gateway_backend_in_flight_requests%(g)s) - sum by (job, instance) (headroom_gateway_ready_backends%(g)s) > 0' % { g: gw },
                'warning', 'The gateway {{ $labels.instance }} routes around ejected backends',
                'Backends the gateway knows failed their health checks or refused connections and are out of rotation.', '5m'),
          alert('HeadroomReplicaRestarting', 'changes(process_start_time_seconds%s[15m]) > 0' % vllm,
                'warning', 'The vLLM server at {{ $labels.instance }} restarted',
                'The vLLM process at {{ $labels.instance }} started again within the last 15 minutes: it crashed or was killed (out of memory, a failed liveness probe, an XID), and the requests it held failed.'),
        ],
      },
      {
        name: 'headroom-gpu.alerts',
        rules: [
          alert('HeadroomGPUXidError', 'max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS%s) > 0' % dcgm,
                'critical', 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported an XID error',
                'The NVIDIA driver reported an XID error on this GPU: a hardware, driver or application fault, often followed by the replica on it failing.'),
          alert('HeadroomGPUHot', 'max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP%s) > %d' % [dcgm, c.gpuTempCelsius],
                'warning', 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} runs hot',
                'Above %d C a GPU throttles its clocks: steps take longer and every latency SLO of the replica on it suffers.' % c.gpuTempCelsius, '10m'),
          alert('HeadroomGPUClocksThrottled',
                '(max by (Hostname, gpu) (DCGM_FI_DEV_SM_CLOCK%(d)s) < %(r)g * max by (Hostname, gpu) (max_over_time(DCGM_FI_DEV_SM_CLOCK%(d)s[1d]))) and on (Hostname, gpu) (max by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL%(d)s) > %(u)d)'
                % { d: dcgm, r: c.gpuClockDropRatio, u: c.gpuBusyUtilPercent },
                'warning', 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} runs busy at reduced clocks',
                'The SM clock of this busy GPU is below %g%% of its highest in the last day: thermal or power throttling, or a clock limit set on it; every step of its replica is slower.' % (100 * c.gpuClockDropRatio), '10m'),
          alert('HeadroomGPUVanished',
                'count by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL%(d)s offset 30m) unless count by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL%(d)s)' % { d: dcgm },
                'warning', 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} stopped reporting',
                'This GPU reported 30 minutes ago and no longer does: its exporter, its node or the GPU itself is gone.', '5m'),
        ],
      },
      {
        name: 'headroom-autoscaler.alerts',
        rules: [
          alert('HeadroomAutoscalerStale', 'max by (target) (headroom_autoscaler_stale%s) == 1' % auto,
                'warning', 'The autoscaler holds {{ $labels.target }}: its metrics are stale or missing',
                'The autoscaler cannot read usable metrics for this target (Prometheus down, a series missing, or a value no fleet reads), so it keeps the replica count and never scales down.', '5m'),
          alert('HeadroomAutoscalerNoLeader', 'max(headroom_autoscaler_leader%s) == 0' % auto,
                'critical', 'No autoscaler instance holds the lease',
                'Every autoscaler instance runs but none is leader, so no replica count is written.', '5m'),
          alert('HeadroomAutoscalerActuationFailing', 'sum by (target) (increase(headroom_autoscaler_actuations_total{%s, result="failed"}[10m])) > 0' % c.autoscalerSelector,
                'warning', 'The autoscaler fails to write replica counts for {{ $labels.target }}',
                'Writing the scale subresource failed in the last 10 minutes (permissions, the API server, or a workload that is gone).'),
          alert('HeadroomReplicasNotReady', 'max by (target) (headroom_autoscaler_desired_replicas%(a)s) > max by (target) (headroom_autoscaler_ready_replicas%(a)s)' % { a: auto },
                'warning', '{{ $labels.target }} has fewer ready replicas than asked for, for longer than a cold start',
                'Replicas asked for are not ready after %s: pods pending for want of GPUs, images or weights slow to load, or replicas crashing.' % c.coldStart, c.coldStart),
          alert('HeadroomAutoscalerAtMaxWhileSLOBurns',
                '(%(max)s) and on (%(m)s) (%(m)s:headroom_slo_ttft_errors:ratio_rate1h / on (%(m)s) (1 - %(m)s:headroom_slo_latency_objective:ratio) > 1)' % { max: atMax, m: m },
                'critical', '{{ $labels.%s }} is at max replicas and still misses its TTFT SLO' % m,
                'The autoscaler capped its count at max_replicas in the last 10 minutes while the TTFT SLO burns its budget faster than it is earned: more replicas are needed than it may ask for.', '10m'),
        ],
      },
      {
        name: 'headroom-cost.alerts',
        rules: [
          alert('HeadroomCostPerTokenOverBudget', '%s:headroom_cost_per_million_output_tokens:ratio_rate%s > %g' % [m, c.costWindow, c.costBudgetPerMillionOutputTokens],
                'warning', '{{ $labels.%s }} costs more per 1M output tokens than its budget' % m,
                'Over the last %s the cost per 1M output tokens of {{ $labels.%s }} is above the budget of $%g.' % [c.costWindow, m, c.costBudgetPerMillionOutputTokens], '1h'),
          alert('HeadroomIdleGPUsHigh', '%(m)s:headroom_idle_gpus:sum / on (%(m)s) %(m)s:headroom_gpus:sum > %(s)g' % { m: m, s: c.idleGpuShare },
                'warning', 'Most GPUs of {{ $labels.%s }} serve no request' % m,
                'More than %g%% of the GPUs paid for {{ $labels.%s }} ran no request over the last 5 minutes, for an hour.' % [100 * c.idleGpuShare, m], '1h'),
        ],
      },
      {
        name: 'headroom-targets.alerts',
        rules: [
          alert('HeadroomTargetDown', std.join(' or ', ['up{%s} == 0' % jobs[j] for j in ['vllm', 'dcgm', 'gateway', 'autoscaler']]),
                'warning', 'Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}',
                'A scrape target of Headroom is down: its series stop, and dashboards, alerts and the autoscaler lose what it measured.', '5m'),
        ] + [
          alert('HeadroomExporterAbsent', 'absent(up{%s})' % jobs[j],
                'critical', 'No %s target is scraped at all' % j,
                'Prometheus has no %s target: its service discovery finds none, so every alert on its series is blind.' % j, '10m')
          + { labels+: { exporter: j } }
          for j in c.absentJobs
        ],
      },
    ],
  },
}
