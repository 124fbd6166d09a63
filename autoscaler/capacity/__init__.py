"""Per-replica capacity at the SLO: from the engine model (a table over length mixes) or a measured profile."""
