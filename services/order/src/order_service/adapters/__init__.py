"""Adapters: PostgreSQL repository."""
