"""Typed async clients of the system's gRPC services."""
