"""Use cases of the payment service over an abstract unit of work and an abstract provider."""
