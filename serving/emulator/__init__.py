"""vLLM replica emulator: the engine model behind an OpenAI-compatible HTTP server on the wall clock."""
