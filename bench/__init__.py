"""Benchmarks: engine fidelity, roofline floor, emulator cost; `python -m bench` writes docs/benchmarks.md."""
