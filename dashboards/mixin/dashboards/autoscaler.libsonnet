// Autoscaler: what it asks for and why, against the load that came.
local g = import '../lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local m = c.modelLabel,
    local a = '{%s, %s=~"$%s", %s=~"$%s", target=~"$%s"}' % [c.autoscalerSelector, c.clusterLabel, c.clusterLabel, c.namespaceLabel,
                                                           c.namespaceLabel, m],
    local aNoTarget = '{%s, %s=~"$%s", %s=~"$%s"}' % [c.autoscalerSelector, c.clusterLabel, c.clusterLabel, c.namespaceLabel, c.namespaceLabel],
    local r = '[$__rate_interval]',
    'headroom-autoscaler.json': g.dashboard('Headroom / Autoscaler', 'headroom-autoscaler',
      'Per target: replicas asked for and ready, the forecast against the load, capacity per replica, decisions by reason, staleness and leadership.', [
      g.timeseries('Replicas', 'Desired (the policy), current (spec.replicas), ready, starting and stopping (draining) replicas: headroom_autoscaler_*_replicas.',
                   [['max by (target) (headroom_autoscaler_%s_replicas%s)' % [k, a], '%s {{target}}' % k] for k in ['desired', 'current', 'ready', 'starting', 'stopping']],
                   'short', min=0),
      g.timeseries('Forecast against the load', 'The forecast peak over the horizon (point and upper bound, headroom_autoscaler_forecast_requests_per_second) against the requests the engines finished (recorded %s:vllm_request_success:rate5m).' % m,
                   [['max by (target, quantile) (headroom_autoscaler_forecast_requests_per_second%s)' % a, 'forecast {{quantile}} {{target}}'],
                    ['sum by (%s) (%s:vllm_request_success:rate5m{%s=~"$%s"})' % [m, m, m, m], 'load {{%s}}' % m]], 'reqps', min=0),
      g.timeseries('Capacity per replica', 'Requests/s one replica carries within the SLO, as the online correction has it (headroom_autoscaler_capacity_requests_per_second).',
                   [['max by (target) (headroom_autoscaler_capacity_requests_per_second%s)' % a, '{{target}}']], 'reqps', min=0),
      g.timeseries('Decisions by reason', 'Why the policy chose its count, per second of decisions: rate(headroom_autoscaler_decisions_total) by reason kind.',
                   [['sum by (target, reason) (rate(headroom_autoscaler_decisions_total%s%s))' % [a, r], '{{target}} {{reason}}']], 'ops', min=0),
      g.timeseries('Stale metrics and leadership', 'headroom_autoscaler_stale (1: the target holds on stale or missing metrics) and headroom_autoscaler_leader (1: this instance may actuate).',
                   [['max by (target) (headroom_autoscaler_stale%s)' % a, 'stale {{target}}'], ['max(headroom_autoscaler_leader%s)' % aNoTarget, 'leader']],
                   'short', min=0, max=1),
      g.timeseries('Actuations', 'Replica count changes written per second, by result (changed, unchanged, failed): rate(headroom_autoscaler_actuations_total).',
                   [['sum by (target, result) (rate(headroom_autoscaler_actuations_total%s%s))' % [a, r], '{{target}} {{result}}']], 'ops', min=0),
      g.timeseries('Loop duration', 'p95 and mean of one pass over every target (headroom_autoscaler_loop_duration_seconds).',
                   [['histogram_quantile(0.95, sum by (le) (rate(headroom_autoscaler_loop_duration_seconds_bucket%s%s)))' % [aNoTarget, r], 'p95'],
                    ['sum(rate(headroom_autoscaler_loop_duration_seconds_sum%(s)s%(r)s)) / sum(rate(headroom_autoscaler_loop_duration_seconds_count%(s)s%(r)s))' % { s: aNoTarget, r: r }, 'mean']],
                   's', min=0),
      g.stat('Since the last pass', 'Seconds since a pass last completed (time() - headroom_autoscaler_last_success_timestamp_seconds); above a few intervals the loop is stuck.',
             'time() - max(headroom_autoscaler_last_success_timestamp_seconds%s)' % aNoTarget, 's', thresholds=[[60, 'orange'], [300, 'red']]),
    ], c, annotations=[{
      name: 'Scaling changes', datasource: g.datasource, enable: true, iconColor: 'orange',
      expr: 'changes(headroom_autoscaler_desired_replicas%s[1m]) > 0' % a, step: '60s',
      titleFormat: 'desired replicas of {{target}} changed', tagKeys: 'target',
    }]),
  },
}
