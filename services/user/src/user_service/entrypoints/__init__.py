"""The service's edges: grpc/ (servicer, interceptor, health, reflection, the server itself) and
demo.py (a narrated client session). They get adapters only through bootstrap, never by import."""
