"""Child processes that end with their parent: Linux's PR_SET_PDEATHSIG, so a `headroom up` killed with SIGKILL (no
chance to stop its children) leaves no Prometheus or emulator behind. Elsewhere, a no-op."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1
# resolved here, in the parent: between fork and exec the child only makes the call
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """A `preexec_fn`: the child gets SIGTERM when the thread that started it ends (with its process, or killed)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
