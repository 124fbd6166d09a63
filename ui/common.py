"""What every console page shows the same way: a source that does not answer, the query behind a figure and its
age, and an empty state that says what to start."""

from __future__ import annotations

import time
from contextlib import contextmanager

import streamlit as st

from ui.prom import SourceUnavailable

START_HINT = (
    "Start the local stack with `headroom up --autoscale` (or `make demo`), or point the console at your "
    "Prometheus: `headroom console --prometheus URL`."
)


@contextmanager
def unavailable_as_message():
    """A source that does not answer becomes a message with what to start, never a stack trace."""
    try:
        yield
    except SourceUnavailable as err:
        st.error(f"{err}. {START_HINT}")
        st.stop()


def source_caption(query: str, window: str, method: str, newest_s: float | None = None) -> None:
    age = "" if newest_s is None else f"; newest sample {max(0.0, time.time() - newest_s):.0f} s old"
    st.caption(f"Source: `{query}`; window {window}; {method}{age}")


def no_data(what: str) -> None:
    st.info(
        f"No {what} yet. The recorded series appear a minute after the first requests: send traffic through the "
        "gateway (`headroom loadtest run` or `make demo`)."
    )
