// GPU fleet: dcgm-exporter's series (or Headroom's NVML exporter, with the same names) per GPU.
local g = import '../lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local s = '{%s, %s=~"$%s", %s=~"$%s"}' % [c.dcgmSelector, c.clusterLabel, c.clusterLabel, c.namespaceLabel, c.namespaceLabel],
    local r = '[$__rate_interval]',
    local per = 'Hostname, gpu',
    local gpu(metric, scale='') = 'max by (%s) (%s%s)%s' % [per, metric, s, scale],
    'headroom-gpu.json': g.dashboard('Headroom / GPU fleet', 'headroom-gpu',
      'Every GPU: utilization, engine activity, memory, power, energy, temperature, clocks and XID errors (DCGM field names).', [
      g.timeseries('GPU utilization', 'DCGM_FI_DEV_GPU_UTIL: the share of time a kernel ran, per GPU.', [[gpu('DCGM_FI_DEV_GPU_UTIL'), '{{Hostname}} gpu {{gpu}}']], 'percent', min=0, max=100),
      g.timeseries('Graphics engine active', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE: the share of time the graphics engine was busy (a 0-1 ratio).', [[gpu('DCGM_FI_PROF_GR_ENGINE_ACTIVE'), '{{Hostname}} gpu {{gpu}}']], 'percentunit', min=0, max=1),
      g.timeseries('Tensor cores active', 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE: the share of cycles the tensor pipes were busy.', [[gpu('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE'), '{{Hostname}} gpu {{gpu}}']], 'percentunit', min=0, max=1),
      g.timeseries('Memory bandwidth active', 'DCGM_FI_PROF_DRAM_ACTIVE: the share of cycles device memory was busy; decode steps are bound by it.', [[gpu('DCGM_FI_PROF_DRAM_ACTIVE'), '{{Hostname}} gpu {{gpu}}']], 'percentunit', min=0, max=1),
      g.timeseries('Framebuffer used', 'DCGM_FI_DEV_FB_USED (MiB): vLLM reserves most of it for the KV cache at start.', [[gpu('DCGM_FI_DEV_FB_USED', ' * 1048576'), '{{Hostname}} gpu {{gpu}}']], 'bytes', min=0),
      g.timeseries('Power', 'DCGM_FI_DEV_POWER_USAGE in watts.', [[gpu('DCGM_FI_DEV_POWER_USAGE'), '{{Hostname}} gpu {{gpu}}']], 'watt', min=0),
      g.timeseries('Energy', 'Energy per second from the DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter (mJ): its rate over 1000 is the mean power in watts.',
                   [['sum by (%s) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION%s%s)) / 1000' % [per, s, r], '{{Hostname}} gpu {{gpu}}']], 'watt', min=0),
      g.timeseries('Temperature', 'DCGM_FI_DEV_GPU_TEMP in degrees Celsius.', [[gpu('DCGM_FI_DEV_GPU_TEMP'), '{{Hostname}} gpu {{gpu}}']], 'celsius', min=0, thresholds=[[85, 'red']]),
      g.timeseries('Clocks', 'DCGM_FI_DEV_SM_CLOCK and DCGM_FI_DEV_MEM_CLOCK (MHz); an SM clock below its usual value under load means throttling.',
                   [[gpu('DCGM_FI_DEV_SM_CLOCK', ' * 1e6'), 'SM {{Hostname}} gpu {{gpu}}'], [gpu('DCGM_FI_DEV_MEM_CLOCK', ' * 1e6'), 'memory {{Hostname}} gpu {{gpu}}']], 'hertz', min=0),
      g.timeseries('Last XID error', 'DCGM_FI_DEV_XID_ERRORS: the last XID the driver reported (0: none). Any other value wants a look at the node.',
                   [[gpu('DCGM_FI_DEV_XID_ERRORS'), '{{Hostname}} gpu {{gpu}}']], 'short', min=0, thresholds=[[1, 'red']]),
    ], c, labels=['cluster', 'namespace']),
  },
}
