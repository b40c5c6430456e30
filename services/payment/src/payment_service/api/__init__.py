"""HTTP edge of the payment service: read API and the provider's admin fault switches."""
