// SLI error ratios per model over every SLO window: TTFT and time per output token from the gateway's per-request
// counts (at any threshold), else vLLM's histograms at the SLO's bucket edge; per model and tenant from the
// gateway's counts; availability from requests that ended in an engine error (as sloth and pyrra record them).
local promql = import '../lib/promql.libsonnet';
local slo = import '../lib/slo.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local m = c.modelLabel,
    local sel(extra) = promql.selector([c.vllmSelector, extra]),
    local range(w) = std.get(c.sloWindowDurations, w, w),
    local gw(parts) = promql.selector([c.gatewaySelector] + parts),
    local rate(metric, selector, w) = 'rate(%s%s[%s])' % [metric, selector, range(w)],
    // the gateway labels a model `model`: copied to the model label
    local byModel(expr, by) = 'sum by (%s) (label_replace(%s, "%s", "$1", "model", "(.+)"))' % [std.join(', ', [m] + by), expr, m],
    // misses over all the gateway's judged requests, and the bucket-edge ratio of vLLM's histogram where one exists
    local fromGateway(name, g, w, by) =
      local judged(extra) = rate('headroom_gateway_slo_requests_total', gw([g.on('model'), 'slo="%s"' % name] + extra), w);
      '%s / %s' % [byModel(judged(['result="missed"']), by), byModel(judged([]), by)],
    local fromHistogram(histogram, g, le, w) =
      '1 - (sum by (%(m)s) (%(good)s) / sum by (%(m)s) (%(all)s))' % {
        m: m, good: rate(histogram + '_bucket', sel(std.join(', ', [x for x in [g.matcher, 'le="%s"' % le] if x != ''])), w),
        all: rate(histogram + '_count', sel(g.matcher), w),
      },
    local latency(name, histogram, edges, field, what) = [
      local le = slo.edge(c, g.slo[field], edges, what);
      local sources = (if c.gatewaySli then [fromGateway(name, g, w, [])] else [])
                      + (if le != null then [fromHistogram(histogram, g, le, w)] else []);
      promql.record('%s:headroom_slo_%s_errors:ratio_rate%s' % [m, name, w], std.join('\nor\n', ['(%s)' % s for s in sources]))
      for g in slo.groups(c)
      for w in c.sloWindows
    ] + (if c.gatewaySli then [
      promql.record('%s_tenant:headroom_slo_%s_errors:ratio_rate%s' % [m, name, w], fromGateway(name, g, w, ['tenant']))
      for g in slo.groups(c)
      for w in c.sloWindows
    ] else []),
    local availability = [
      promql.record('%s:headroom_slo_availability_errors:ratio_rate%s' % [m, w],
                    'sum by (%(m)s) (rate(vllm:request_success_total%(bad)s[%(w)s])) / sum by (%(m)s) (rate(vllm:request_success_total%(all)s[%(w)s]))' % {
                      m: m, w: range(w), bad: sel('finished_reason="error"'), all: sel(''),
                    })
      for w in c.sloWindows
    ],
    // each model's objectives as series, so dashboards divide by the right budget
    local objectives = [
      promql.record('%s:headroom_slo_%s_objective:ratio' % [m, kind],
                    'group by (%s) (vllm:num_requests_running%s) * 0 + %g' % [m, sel(g.matcher), g.slo[kind + 'Objective']])
      for kind in ['latency', 'availability']
      for g in slo.groups(c)
    ],
    groups+: [{
      name: 'headroom-slo.rules',
      rules: objectives + latency('ttft', 'vllm:time_to_first_token_seconds', slo.ttftEdges, 'ttftSeconds', 'TTFT')
             + latency('tpot', 'vllm:request_time_per_output_token_seconds', slo.tpotEdges, 'tpotSeconds', 'time per output token')
             + availability,
    }],
  },
}
