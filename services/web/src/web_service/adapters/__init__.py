"""Adapters: the gateway's public API (accounts, orders) and the console's scrapers."""
