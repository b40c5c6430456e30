"""Payment service: exactly one charge per order through a simulated provider."""
