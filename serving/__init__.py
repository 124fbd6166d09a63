"""Serving: vLLM engine model, emulator, local fleet and profiles."""
