"""Fluid mode: the fleet as arrays stepped in fixed steps (days of traffic in seconds of CPU).

Glossary:
- step: the fluid clock's unit (1 s on a request trace, about 15 s on ServeGen's rates); arrivals are counted per
  step and every replica serves each step at once.
- steps (steps.py): this mode's side of the fleet loop that both modes share (autoscaler.sim.loop, with the gateway
  queue and the scrape, control and timeline clocks): each step routes, serves and drains at once; the replica
  models plug into it through `ReplicaModel`.
- load table (table.py, autoscaler.capacity.load_table): a replica's throughput, latencies and gauges measured on
  `serving/engine` against the number of requests inside; a table replica's state is the work it holds.
- mix period (autoscaler.sim.mix_periods): a stretch of a request trace whose prompt and answer lengths stay
  alike; each has its own load table.
- cohort (cohort.py): the requests whose first token comes in the same step; they decode together in lockstep,
  one token per engine step, in steps timed by the engine's step-time model.
- clock phase: where the scrape and control clocks stand against the trace's start (SimConfig.clock_phase_s);
  in a cluster they are not aligned with the traffic, and threshold policies turn on them.

docs/simulator.md has the derivations.
"""
