"""Load forecasts for the predictive autoscaler (pure: no clock, no I/O)."""
