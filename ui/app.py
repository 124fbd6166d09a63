"""Headroom's console: the navigation only; each page is one module of ui.views (fetch, build, render)."""

import streamlit as st

from ui.views import autoscaler, cost, planner, slos

st.set_page_config(page_title="Headroom", layout="wide")
st.navigation(
    [
        st.Page(cost.render, title="Cost", url_path="cost", default=True),
        st.Page(planner.render, title="Capacity planner", url_path="planner"),
        st.Page(autoscaler.render, title="Autoscaler", url_path="autoscaler"),
        st.Page(slos.render, title="SLOs and alerts", url_path="slos"),
    ]
).run()
