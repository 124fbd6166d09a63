"""Model of one vLLM V1 replica: profile, step time, KV blocks, scheduler. Pure: no clock, no I/O."""
