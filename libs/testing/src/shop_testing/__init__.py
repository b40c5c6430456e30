"""Test harness: real PostgreSQL, Redis and RabbitMQ for every suite (a pytest plugin)."""
