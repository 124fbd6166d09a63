"""One source for the defaults that the simulator (SimulateArgs, SimConfig), the predictive policy and `headroom
simulate`'s flags share: an SLO of 1 s to the first token and 50 ms a token, vLLM pods' cold start on Kubernetes,
Prometheus' scrape interval, and the replica bounds of a simulated fleet. No imports: the CLI reads it at start."""

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
