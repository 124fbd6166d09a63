// GPUs paid for, their price and cost per model, and cost per 1M tokens. The autoscaler exports each target's
// replicas asked for (starting ones are paid too, as the simulator counts them), GPUs per replica and price;
// where no autoscaler runs, ready vLLM replicas and the config's defaults stand in.
local promql = import '../lib/promql.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local m = c.modelLabel,
    local auto = '{%s}' % c.autoscalerSelector,
    local vllm = '{%s}' % c.vllmSelector,
    local engines = 'count by (%s) (vllm:num_requests_running%s)' % [m, vllm],
    local w = c.costWindow,
    local perMillion(tokens) =
      '%(m)s:headroom_cost_dollars:increase%(w)s / on (%(m)s) (sum by (%(m)s) (increase(%(t)s%(v)s[%(w)s])) / 1e6 > 0)'
      % { m: m, w: w, t: tokens, v: vllm },
    groups+: [{
      name: 'headroom-cost.rules',
      interval: '%ds' % c.costRuleIntervalSeconds,
      rules: [
        promql.record('%s:headroom_gpus_per_replica:max' % m,
                      'max by (%(m)s) (headroom_gpus_per_replica%(a)s) or (%(e)s * 0 + %(g)d)' % { m: m, a: auto, e: engines, g: c.gpusPerReplica }),
        // replicas asked for, starting ones included (paid from their start, as the simulator counts them), and those
        // still draining after a scale-down (their GPUs are held until they exit)
        promql.record('%s:headroom_gpus:sum' % m,
                      '(sum by (%(m)s) (label_replace({__name__=~"headroom_autoscaler_(current|stopping)_replicas", %(a)s}, "%(m)s", "$1", "target", "(.+)"))'
                      % { m: m, a: c.autoscalerSelector }
                      + ' or %s) * on (%s) %s:headroom_gpus_per_replica:max' % [engines, m, m]),
        promql.record('%s:headroom_gpu_price_dollars_per_hour:max' % m,
                      'max by (%(m)s) (headroom_gpu_price_dollars_per_hour%(a)s) or (%(e)s * 0 + %(p)g)'
                      % { m: m, a: auto, e: engines, p: c.gpuPricePerHour }),
        promql.record('%s:headroom_cost_dollars_per_hour:sum' % m,
                      '%(m)s:headroom_gpus:sum * on (%(m)s) %(m)s:headroom_gpu_price_dollars_per_hour:max' % { m: m }),
        // GPUs of replicas that ran no request, as a time share over 5 minutes, and of replicas still starting
        promql.record('%s:headroom_idle_gpus:sum' % m,
                      'clamp_min(%(m)s:headroom_gpus:sum - on (%(m)s) (sum by (%(m)s) (avg_over_time((vllm:num_requests_running%(v)s > bool 0)[5m:])) * on (%(m)s) %(m)s:headroom_gpus_per_replica:max), 0)'
                      % { m: m, v: vllm }),
        promql.record('%s:headroom_idle_cost_dollars_per_hour:sum' % m,
                      '%(m)s:headroom_idle_gpus:sum * on (%(m)s) %(m)s:headroom_gpu_price_dollars_per_hour:max' % { m: m }),
        // each tenant's share of its model's cost: its tokens weighted by the GPU work they take, over all tenants'
        promql.record('%s_tenant:headroom_cost_dollars_per_hour:share' % m,
                      '(%(work)s) / on (%(m)s) group_left sum by (%(m)s) (%(work)s) * on (%(m)s) group_left %(m)s:headroom_cost_dollars_per_hour:sum'
                      % { m: m, work: '%(m)s_tenant:headroom_gateway_output_tokens:rate5m + %(k)g * %(m)s_tenant:headroom_gateway_prompt_tokens:rate5m'
                                      % { m: m, k: c.promptTokenWeight } }),
        // dollars spent over the window: the cost per hour summed sample by sample (exact however short the history,
        // where avg_over_time over rate() would not be: rate() divides by the whole window)
        promql.record('%s:headroom_cost_dollars:increase%s' % [m, w],
                      'sum_over_time(%(m)s:headroom_cost_dollars_per_hour:sum[%(w)s]) * %(i)d / 3600' % { m: m, w: w, i: c.costRuleIntervalSeconds }),
        promql.record('%s:headroom_cost_per_million_output_tokens:ratio_rate%s' % [m, w], perMillion('vllm:generation_tokens_total')),
        promql.record('%s:headroom_cost_per_million_prompt_tokens:ratio_rate%s' % [m, w], perMillion('vllm:prompt_tokens_total')),
      ],
    }],
  },
}
