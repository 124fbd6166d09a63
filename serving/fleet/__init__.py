"""Local fleet of emulator processes: scale, drain, Prometheus file_sd targets."""
