"""Payment provider adapters: a simulated provider with fault switches, and its breaker guard."""
