"""The `headroom` command and the local stack (`headroom up`)."""
