"""Gateway in front of vLLM replicas: routing, streaming, token and request metrics."""
