"""Adapters: the SQL repository and unit of work, and the payment provider (simulated, guarded)."""
