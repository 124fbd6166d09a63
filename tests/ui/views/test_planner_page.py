"""The planner page in Streamlit's AppTest with a trace: the plan for its busiest minutes, then the predictive policy
and the tuned HPA simulated over it on the cheapest profile (no Prometheus needed)."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest


def test_a_trace_is_planned_then_simulated(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADROOM_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    trace = tmp_path / "t.jsonl"
    arrivals = np.cumsum(rng.exponential(1 / 4.0, 400))
    trace.write_text(
        "".join(
            json.dumps({"timestamp": float(t * 1000), "input_length": 500, "output_length": 100}) + "\n"
            for t in arrivals
        )
    )
    at = AppTest.from_string("from ui.views import planner\nplanner.render()\n", default_timeout=240).run()
    at.radio[0].set_value("Trace file").run()
    at.text_input[0].set_value(str(trace)).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert "Busiest 5 minutes" in at.caption[0].value
    at.number_input[-1].set_value(10.0).run()  # a 10 s cold start: the trace is under two minutes long
    at.button[0].click().run()
    assert not at.exception, at.exception
    summary = next(d.value for d in at.dataframe if "slo_attainment" in d.value.columns)
    assert len(summary) == 2 and summary["policy"].str.startswith("predictive").sum() == 1
    assert summary["policy"].str.startswith("hpa").sum() == 1 and (summary["gpu_hours"] > 0).all()
