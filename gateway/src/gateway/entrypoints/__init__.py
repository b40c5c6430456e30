"""How the world reaches the gateway: app (the FastAPI app factory), pipeline (the ASGI request
pipeline in front of the router), bounds (request-size middleware), token_api (POST /auth/token,
JWKS), transcoding (REST→gRPC user API), readiness, consumers (the user-events queue), and
context (the running App per request, and the narrow Depends functions)."""
