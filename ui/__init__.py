"""Streamlit console: cost per token and capacity planning."""
