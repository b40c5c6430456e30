"""`python -m user_service`: run the gRPC server."""

from user_service.server import main

main()
