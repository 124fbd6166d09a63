"""Request-level mode: every request through a `serving/engine` replica on a virtual clock (the reference)."""
