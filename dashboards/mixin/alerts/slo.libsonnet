// Multi-window multi-burn-rate alerts per model on the TTFT, time-per-output-token and availability SLOs: an
// alert fires when both windows of a pair burn the error budget faster than its factor (SRE workbook, ch. 5).
local promql = import '../lib/promql.libsonnet';
local slo = import '../lib/slo.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local m = c.modelLabel,
    local sli(name, objectiveField, alert, severity) = {
      alert: alert,
      expr: std.join('\nor\n', [
        '(%(m)s:headroom_slo_%(n)s_errors:ratio_rate%(l)s%(sel)s > %(f)g * %(b)g and %(m)s:headroom_slo_%(n)s_errors:ratio_rate%(s)s%(sel)s > %(f)g * %(b)g)'
        % { m: m, n: name, l: p.long, s: p.short, f: p.factor, b: 1 - g.slo[objectiveField],
            sel: if g.matcher == '' then '' else '{%s}' % g.matcher }
        for g in slo.groups(c)
        for p in [p for p in c.burnRates if p.severity == severity]
      ]),
      severity:: severity,
    },
    local rule(name, objectiveField, alertBase, what) = [
      sli(name, objectiveField, alertBase + (if severity == 'critical' then 'BudgetBurn' else 'BudgetSlowBurn'), severity)
      for severity in ['critical', 'warning']
    ],
    local annotate(a, what) = {
      alert: a.alert,
      expr: a.expr,
      labels: { severity: a.severity },
      annotations: {
        summary: '%s SLO error budget burning %s for {{ $labels.%s }}' % [what, if a.severity == 'critical' then 'fast' else 'slowly', m],
        description: 'Requests of {{ $labels.%s }} miss the %s SLO fast enough to spend its error budget %s ' % [
          m, what, if a.severity == 'critical' then 'within days' else 'before the month ends'] +
                     '(both windows of a burn-rate pair over their threshold).',
        runbook_url: c.runbookUrlBase + a.alert + '.md',
      },
    },
    groups+: [{
      name: 'headroom-slo.alerts',
      rules: [annotate(a, 'TTFT') for a in rule('ttft', 'latencyObjective', 'HeadroomTTFT', 'TTFT')]
             + [annotate(a, 'time per output token') for a in rule('tpot', 'latencyObjective', 'HeadroomTPOT', 'TPOT')]
             + [annotate(a, 'availability') for a in rule('availability', 'availabilityObjective', 'HeadroomAvailability', 'availability')],
    }],
  },
}
