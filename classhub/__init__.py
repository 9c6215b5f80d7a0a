"""classhub: a JupyterHub teaching platform for AI-in-health courses, on premises."""

__version__ = "0.1.0"
