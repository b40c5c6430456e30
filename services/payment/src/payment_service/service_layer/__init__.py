"""Use cases: charge and refund once per order."""
