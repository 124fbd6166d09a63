// Minimal Grafana dashboard builders (schema 39): dashboards with templated datasource, cluster, namespace and model,
// time series, stat and table panels laid out on the 24-column grid. Each panel's description says what it shows;
// a panel with no data in a healthy system (errors, rejections) ends its description with `$.emptyNote`.
{
  schemaVersion:: 39,
  datasource:: { type: 'prometheus', uid: '${datasource}' },
  emptyNote:: 'Empty in a healthy system.',
  local note(description, empty) = if empty then description + ' ' + $.emptyNote else description,

  // one query; `legend` as Grafana's legendFormat
  target(expr, legend='', ref='A'):: {
    datasource: $.datasource, expr: expr, legendFormat: legend, refId: ref, range: true, editorMode: 'code',
  },

  local targets(queries) = [
    $.target(q[0], if std.length(q) > 1 then q[1] else '', std.char(65 + i))
    for i in std.range(0, std.length(queries) - 1)
    for q in [queries[i]]
  ],

  // a time series panel: queries are [expr, legend] pairs; `unit` is Grafana's unit id
  timeseries(title, description, queries, unit, width=12, min=null, max=null, emptyWhenHealthy=false, thresholds=[]):: {
    type: 'timeseries', title: title, description: note(description, emptyWhenHealthy), datasource: $.datasource,
    targets: targets(queries), width:: width,
    fieldConfig: {
      defaults: {
        unit: unit,
        [if min != null then 'min']: min,
        [if max != null then 'max']: max,
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: true },
        thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] + [
          { color: t[1], value: t[0] } for t in thresholds
        ] },
      } + (if thresholds == [] then {} else { custom+: { thresholdsStyle: { mode: 'line' } } }),
      overrides: [],
    },
    options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['mean', 'max', 'lastNotNull'] },
               tooltip: { mode: 'multi', sort: 'desc' } },
  },

  // a single figure (the last value)
  stat(title, description, expr, unit, width=6, thresholds=[], emptyWhenHealthy=false):: {
    type: 'stat', title: title, description: note(description, emptyWhenHealthy), datasource: $.datasource,
    targets: targets([[expr]]), width:: width,
    fieldConfig: {
      defaults: { unit: unit, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] + [
        { color: t[1], value: t[0] } for t in thresholds
      ] } },
      overrides: [],
    },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value',
               graphMode: 'area', textMode: 'auto' },
  },

  // a table of instant values, one row per series
  table(title, description, queries, unit, width=24):: {
    type: 'table', title: title, description: description, datasource: $.datasource,
    targets: [t { instant: true, range: false, format: 'table' } for t in targets(queries)], width:: width,
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: { showHeader: true },
    transformations: [{ id: 'merge', options: {} }],
  },

  // panels flowed left to right, 8 high, onto the 24-column grid; ids in order
  layout(panels)::
    local step(acc, p) =
      local wraps = acc.x + p.width > 24;
      local x = if wraps then 0 else acc.x;
      local y = if wraps then acc.y + 8 else acc.y;
      { x: x + p.width, y: y, out: acc.out + [p { id: std.length(acc.out) + 1, gridPos: { x: x, y: y, w: p.width, h: 8 } }] };
    std.foldl(step, panels, { x: 0, y: 0, out: [] }).out,

  // a template variable of a label's values, "All" by default, matching series without the label too
  variable(name, label, metric, config):: {
    name: name, label: label, type: 'query', datasource: $.datasource,
    query: { query: 'label_values(%s, %s)' % [metric, name], refId: name },
    definition: 'label_values(%s, %s)' % [metric, name],
    refresh: 2, includeAll: true, multi: true, allValue: '.*', current: { text: 'All', value: '$__all' }, sort: 1,
  },

  // `labels`: the template variables after the datasource, of cluster, namespace and model (each used by a query)
  dashboard(title, uid, description, panels, config, annotations=[], labels=['cluster', 'namespace', 'model']):: {
    title: title, uid: uid, description: description, tags: ['headroom'],
    schemaVersion: $.schemaVersion, editable: true, graphTooltip: 1, refresh: '30s',
    time: { from: 'now-3h', to: 'now' }, timezone: '',
    local variables = {
      cluster: $.variable(config.clusterLabel, 'Cluster', 'vllm:num_requests_running', config),
      namespace: $.variable(config.namespaceLabel, 'Namespace', 'vllm:num_requests_running{%s=~"$%s"}' % [config.clusterLabel, config.clusterLabel], config),
      model: $.variable(config.modelLabel, 'Model', 'vllm:num_requests_running{%s=~"$%s"}' % [config.namespaceLabel, config.namespaceLabel], config),
    },
    templating: { list: [
      { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
    ] + [variables[l] for l in labels] },
    annotations: { list: [{
      builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true,
      iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard',
    }] + annotations },
    links: [{ title: 'Headroom', type: 'dashboards', tags: ['headroom'], asDropdown: true, includeVars: true,
              keepTime: true }],
    panels: $.layout(panels),
  },
}
