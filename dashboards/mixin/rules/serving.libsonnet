// Request and token rates per model (engine side) and per model and tenant (gateway side).
local promql = import '../lib/promql.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local vllm = '{%s}' % c.vllmSelector,
    local gw = '{%s}' % c.gatewaySelector,
    local m = c.modelLabel,
    // the gateway labels a model `model`: copied to the model label so both sides join
    local gatewayRate(metric, by) = 'sum by (%s) (label_replace(rate(%s%s[5m]), "%s", "$1", "model", "(.+)"))' % [
      std.join(', ', [m] + by), metric, gw, m],
    groups+: [{
      name: 'headroom-serving.rules',
      rules: [
        promql.record('%s:vllm_request_success:rate5m' % m, promql.sumRate('vllm:request_success_total', vllm, '5m', [m])),
        promql.record('%s:vllm_prompt_tokens:rate5m' % m, promql.sumRate('vllm:prompt_tokens_total', vllm, '5m', [m])),
        promql.record('%s:vllm_generation_tokens:rate5m' % m, promql.sumRate('vllm:generation_tokens_total', vllm, '5m', [m])),
        promql.record('%s_tenant:headroom_gateway_requests:rate5m' % m, gatewayRate('headroom_gateway_requests_total', ['tenant'])),
        promql.record('%s_tenant:headroom_gateway_prompt_tokens:rate5m' % m,
                      gatewayRate('headroom_gateway_prompt_tokens_total', ['tenant'])),
        promql.record('%s_tenant:headroom_gateway_output_tokens:rate5m' % m,
                      gatewayRate('headroom_gateway_output_tokens_total', ['tenant'])),
      ],
    }],
  },
}
