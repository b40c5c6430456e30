"""Entrypoints: the pages (Jinja2), the static files, the JSON and Server-Sent Events API."""
