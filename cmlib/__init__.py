"""cmlib: the dashboard's engine, usable without Streamlit (``python -m cmlib``)."""

__version__ = "0.1.0"
