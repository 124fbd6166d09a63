// SLO and cost: attainment, error budget and burn rates per model; cost per 1M tokens per model and tenant; GPU-hours
// and the cost of GPUs that served nothing.
local g = import '../lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local m = c.modelLabel,
    local f = '{%s=~"$%s"}' % [m, m],
    local budgetLeft(name, objective) = '1 - %(m)s:headroom_slo_%(n)s_errors:ratio_rate3d%(f)s / on (%(m)s) (1 - %(m)s:headroom_slo_%(o)s_objective:ratio%(f)s)'
                                        % { m: m, n: name, o: objective, f: f },
    local burn(name, objective, w) = '%(m)s:headroom_slo_%(n)s_errors:ratio_rate%(w)s%(f)s / on (%(m)s) (1 - %(m)s:headroom_slo_%(o)s_objective:ratio%(f)s)'
                                     % { m: m, n: name, o: objective, w: w, f: f },
    'headroom-slo-cost.json': g.dashboard('Headroom / SLO and cost', 'headroom-slo-cost',
      'Per model: SLO attainment, error budget left and burn rates; cost per 1M tokens per model and tenant; GPU-hours and idle cost.', [
      g.timeseries('SLO attainment, 1 h', 'Share of requests within each SLO over the last hour: 1 minus the recorded error ratios (TTFT, time per output token, availability).',
                   [['1 - %s:headroom_slo_%s_errors:ratio_rate1h%s' % [m, n, f], '%s {{%s}}' % [n, m]] for n in ['ttft', 'tpot', 'availability']],
                   'percentunit', max=1),
      g.timeseries('Error budget left, 3 days', 'Budget left over the 3-day window: 1 - error ratio / (1 - objective); below 0 the window spent more than its budget.',
                   [[budgetLeft('ttft', 'latency'), 'ttft {{%s}}' % m], [budgetLeft('tpot', 'latency'), 'tpot {{%s}}' % m],
                    [budgetLeft('availability', 'availability'), 'availability {{%s}}' % m]], 'percentunit', max=1, thresholds=[[0, 'red']]),
      g.timeseries('Burn rate', 'How many times faster than the budget allows each SLO fails, over 1 h and 5 m (the fast-burn page fires when both pass 14.4).',
                   [[burn('ttft', 'latency', w), 'ttft %s {{%s}}' % [w, m]] for w in ['1h', '5m']]
                   + [[burn('tpot', 'latency', w), 'tpot %s {{%s}}' % [w, m]] for w in ['1h', '5m']]
                   + [[burn('availability', 'availability', w), 'availability %s {{%s}}' % [w, m]] for w in ['1h', '5m']],
                   'short', min=0, thresholds=[[14.4, 'red']]),
    ] + (if c.gatewaySli then [
      g.timeseries('Latency SLO attainment by tenant, 1 h', "Each tenant's share of answered requests within the TTFT and time-per-output-token SLOs over the last hour, as the gateway counted them (1 minus the recorded %s_tenant:headroom_slo_*_errors:ratio_rate1h)." % m,
                   [['1 - %s_tenant:headroom_slo_%s_errors:ratio_rate1h%s' % [m, n, f], '%s {{%s}} {{tenant}}' % [n, m]] for n in ['ttft', 'tpot']],
                   'percentunit', max=1),
    ] else []) + [
      g.timeseries('Cost per 1M tokens', 'Cost per hour averaged over %s, over the tokens of that hour (recorded cost_per_million_output_tokens and _prompt_tokens).' % c.costWindow,
                   [['%s:headroom_cost_per_million_output_tokens:ratio_rate%s%s' % [m, c.costWindow, f], 'output {{%s}}' % m],
                    ['%s:headroom_cost_per_million_prompt_tokens:ratio_rate%s%s' % [m, c.costWindow, f], 'prompt {{%s}}' % m]], 'currencyUSD', min=0),
      g.timeseries('Cost per hour by tenant', "Each tenant's share of its model's cost per hour: its tokens weighted by the GPU work they take (a prompt token counts %g of an output token), over all tenants' (recorded %s_tenant:headroom_cost_dollars_per_hour:share)." % [c.promptTokenWeight, m],
                   [['sum by (tenant) (%s_tenant:headroom_cost_dollars_per_hour:share%s)' % [m, f], '{{tenant}}']], 'currencyUSD', min=0),
      g.timeseries('GPUs and idle GPUs', 'GPUs paid for (recorded %(m)s:headroom_gpus:sum: replicas asked for, starting ones included, times GPUs per replica) and those that served no request.' % { m: m },
                   [['%s:headroom_gpus:sum%s' % [m, f], 'paid {{%s}}' % m], ['%s:headroom_idle_gpus:sum%s' % [m, f], 'idle {{%s}}' % m]], 'short', min=0),
      g.timeseries('Cost per hour, and idle', 'Cost per hour (GPUs times price) and the part paid for GPUs that served no request (recorded idle cost).',
                   [['%s:headroom_cost_dollars_per_hour:sum%s' % [m, f], 'total {{%s}}' % m],
                    ['%s:headroom_idle_cost_dollars_per_hour:sum%s' % [m, f], 'idle {{%s}}' % m]], 'currencyUSD', min=0),
      g.stat('GPU-hours, time range', 'GPU-hours over the dashboard time range: the mean GPUs paid times its hours.',
             'sum(avg_over_time(%s:headroom_gpus:sum%s[$__range])) * $__range_s / 3600' % [m, f], 'short'),
    ], c, labels=['model']),
  },
}
