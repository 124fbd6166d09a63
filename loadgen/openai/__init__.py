"""OpenAI-compatible requests: prompts of a given token length, request bodies, and timing of streamed responses."""
