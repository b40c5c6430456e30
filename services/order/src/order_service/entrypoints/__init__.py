"""Entrypoints: HTTP (FastAPI), the message consumers and the saga-timeout sweeper loop. They get
what they need through bootstrap's App, never from adapters/ directly."""
