"""The token rule of the emulator (DESIGN.md, "Tokens in the emulator"): one token per whitespace-separated word. The
emulator tokenizes by it, load generators build prompts of exact lengths by it and count answers by it."""


def words(text: str) -> list[str]:
    """The tokens of a text: its whitespace-separated words."""
    return text.split()


def count_tokens(text: str) -> int:
    return len(words(text))
