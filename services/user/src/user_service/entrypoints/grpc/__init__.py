"""The gRPC edge: server.py builds the grpc.aio server (servicer.py, the one interceptor of
interceptors.py, health.py, reflection) from what the composition root hands it."""
