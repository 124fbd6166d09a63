// Small PromQL builders shared by rules, alerts and dashboards (no third-party library: grafonnet is not vendored).
{
  // `{a="b", c="d"}` from selector strings, empty ones left out
  selector(parts):: '{' + std.join(', ', [p for p in parts if p != '']) + '}',

  // sum by (labels) (rate(metric{selector}[window]))
  sumRate(metric, selector, window, by):: 'sum by (%s) (rate(%s%s[%s]))' % [std.join(', ', by), metric, selector, window],

  // an alert with the annotations every Headroom alert carries; its runbook is docs/runbooks/<name>.md
  alert(config, name, expr, severity, summary, description, forTime=null):: {
    alert: name,
    expr: expr,
    [if forTime != null then 'for']: forTime,
    labels: { severity: severity },
    annotations: { summary: summary, description: description, runbook_url: config.runbookUrlBase + name + '.md' },
  },

  // a recording rule
  record(name, expr, labels={}):: { record: name, expr: expr } + (if labels == {} then {} else { labels: labels }),

  // the SLO of `model` (defaults with the model's overrides)
  sloFor(config, model):: config.slo + std.get(config.sloByModel, model, {}),

  // PromQL's spelling of a bucket edge, as vLLM writes `le` ("1.0", "0.05")
  le(seconds):: if std.floor(seconds) == seconds then '%d.0' % seconds else '%g' % seconds,
}
