"""Entrypoints: the HTTP app and the reservation expiry sweeper."""
