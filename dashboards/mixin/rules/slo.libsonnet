// SLI error ratios per model over every SLO window: TTFT and time per output token from vLLM's histograms at the
// SLO's bucket edge, availability from requests that ended in an engine error (as sloth and pyrra record them).
local promql = import '../lib/promql.libsonnet';
local slo = import '../lib/slo.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local m = c.modelLabel,
    local sel(extra) = promql.selector([c.vllmSelector, extra]),
    local latency(name, histogram, edges, field, what) = [
      promql.record('%s:headroom_slo_%s_errors:ratio_rate%s' % [m, name, w],
                    '1 - (sum by (%(m)s) (rate(%(h)s_bucket%(good)s[%(w)s])) / sum by (%(m)s) (rate(%(h)s_count%(all)s[%(w)s])))' % {
                      m: m, h: histogram, w: w,
                      good: sel(std.join(', ', [x for x in [g.matcher, 'le="%s"' % slo.edge(g.slo[field], edges, what)] if x != ''])),
                      all: sel(g.matcher),
                    })
      for g in slo.groups(c)
      for w in c.sloWindows
    ],
    local availability = [
      promql.record('%s:headroom_slo_availability_errors:ratio_rate%s' % [m, w],
                    'sum by (%(m)s) (rate(vllm:request_success_total%(bad)s[%(w)s])) / sum by (%(m)s) (rate(vllm:request_success_total%(all)s[%(w)s]))' % {
                      m: m, w: w, bad: sel('finished_reason="error"'), all: sel(''),
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
