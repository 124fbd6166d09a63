// The SLO's per-model split: a rule or alert for each model that overrides the default, and one for every other.
local promql = import 'promql.libsonnet';

{
  // vLLM's bucket edges (DESIGN.md): a latency SLO from a histogram holds only at one of them
  ttftEdges:: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560],
  tpotEdges:: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],

  // [{matcher, on(label), slo}]: one entry per overriding model, then the rest under the default; `matcher` on the
  // model label, `on(label)` the same models on another label (the gateway's `model`)
  groups(config)::
    local named = std.objectFields(config.sloByModel);
    local one(m) = { on(label):: '%s="%s"' % [label, m], slo: promql.sloFor(config, m) };
    local rest = { on(label):: if named == [] then '' else '%s!~"%s"' % [label, std.join('|', named)], slo: config.slo };
    [g { matcher: g.on(config.modelLabel) } for g in [one(m) for m in named] + [rest]],

  // `le` of the threshold's bucket, or null where it is none and the gateway's counts serve instead; refused at
  // build time where nothing else would measure it
  edge(config, seconds, edges, what)::
    if std.member(edges, seconds) then promql.le(seconds)
    else if config.gatewaySli then null
    else error '%s SLO of %g s is not a vLLM bucket edge (%s): a ratio from the histogram would be wrong; set a bucket edge, or count it at the gateway (gatewaySli)' % [
      what, seconds, std.join(', ', [std.toString(e) for e in edges])],
}
