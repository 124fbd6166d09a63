"""One source for the defaults that the simulator (SimulateArgs, SimConfig), the predictive policy, the autoscaler's
targets and `headroom simulate`'s flags share: an SLO of 1 s to the first token and 50 ms a token, vLLM pods' cold
start on Kubernetes, Prometheus' scrape interval, replica bounds, and the predictive policy's scale-down guards.
No imports: the CLI reads it at start."""

PROFILE = "llama-3.1-8b-h100"
SLO_TTFT_S = 1.0
SLO_ITL_S = 0.05  # mean time per output token after the first
COLD_START_S = 90.0  # the order reported for vLLM pods on Kubernetes (image pull, weights, CUDA graphs)
SCRAPE_INTERVAL_S = 15.0  # Prometheus' default on Kubernetes
MIN_REPLICAS = 1
MAX_REPLICAS = 100
INITIAL_REPLICAS = 1
RATE_WINDOW_S = 60.0  # the range of the rate() queries a policy reads ([1m])
QUEUE_TIMEOUT_S = 600.0  # the gateway gives up on a request held this long without a ready replica
TIMELINE_INTERVAL_S = 15.0  # one row of a simulation's timeline
TARGET_MAX_REPLICAS = 10  # a live autoscaler target's bound until its owner sets one: GPUs are paid by the hour
FILL = 0.9  # the predictive policy plans each replica for this share of its SLO capacity
SCALE_DOWN_WINDOW_S = 60.0  # a lower count must be recommended this long before it is applied
SCALE_DOWN_WINDOW_UNPROVEN_S = 300.0  # the same while the forecast has too few scored errors
COOLDOWN_S = 60.0  # no scale-down this soon after a change
RISE_MEMORY_S = 600.0  # this long after a scale-up, scale down only with more headroom
