"""`python -m payment_service`: serve the app with uvicorn on HOST:HTTP_PORT."""

from payment_service.server import main

main()
