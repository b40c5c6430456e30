"""Payment provider adapter: the protocol and a simulated provider with fault switches."""
