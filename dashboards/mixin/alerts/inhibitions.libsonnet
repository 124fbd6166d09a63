// Alertmanager inhibition rules: a root cause keeps its symptoms from paging too.
{
  alertmanagerInhibitRules+:: [
    // a fast burn already pages: the slow burn of the same SLO and model adds nothing
    {
      source_matchers: ['alertname="Headroom%sBudgetBurn"' % sli],
      target_matchers: ['alertname="Headroom%sBudgetSlowBurn"' % sli],
      equal: [$._config.modelLabel],
    }
    for sli in ['TTFT', 'TPOT', 'Availability']
  ] + [
    // a vLLM replica down, or no vLLM target at all: its latency and availability alerts are symptoms
    {
      source_matchers: ['alertname="HeadroomTargetDown"', 'job="vllm"'],
      target_matchers: ['alertname=~"Headroom(TTFT|TPOT|Availability)Budget.*|HeadroomKVCache.*"'],
      equal: [$._config.clusterLabel],
    },
    {
      source_matchers: ['alertname="HeadroomExporterAbsent"', 'exporter="vllm"'],
      target_matchers: ['alertname=~"Headroom(TTFT|TPOT|Availability)Budget.*|HeadroomTargetDown"'],
      equal: [$._config.clusterLabel],
    },
    // no leader writes counts: replicas not ready against the policy's count is its symptom
    {
      source_matchers: ['alertname="HeadroomAutoscalerNoLeader"'],
      target_matchers: ['alertname=~"HeadroomReplicasNotReady|HeadroomAutoscalerActuationFailing"'],
      equal: [$._config.clusterLabel],
    },
  ],
}
