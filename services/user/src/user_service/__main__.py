"""`python -m user_service` (and the `user-service` script): run the service (bootstrap.serve)."""

import asyncio

from user_service.bootstrap import serve


def main() -> None:
    """Serve until SIGTERM/SIGINT."""
    asyncio.run(serve())


if __name__ == "__main__":
    main()
