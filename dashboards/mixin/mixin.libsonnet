// Headroom's monitoring mixin: `grafanaDashboards`, `prometheusRules` and `prometheusAlerts`, kubernetes-mixin style.
(import 'config.libsonnet')
+ (import 'rules/serving.libsonnet')
+ (import 'rules/slo.libsonnet')
+ (import 'rules/cost.libsonnet')
+ (import 'alerts/slo.libsonnet')
+ { grafanaDashboards+:: {} }
