"""Adapters: the PostgreSQL repository and unit of work (with the one-statement fast paths), the
user service lookup and its cache. Only bootstrap.py wires them; entrypoints never import them."""
