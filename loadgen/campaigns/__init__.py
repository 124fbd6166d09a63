"""Shipped campaigns (YAML): smoke, step, spike, compressed diurnal, and Azure conv and code replays."""
