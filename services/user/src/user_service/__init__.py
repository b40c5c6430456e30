"""gRPC user service."""
