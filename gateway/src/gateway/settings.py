"""Gateway settings, read from the environment (shop_common.settings pattern)."""

from __future__ import annotations

from pathlib import Path

from shop_common.settings import ServiceSettings

DEFAULT_ROUTES_FILE = Path(__file__).with_name("routes.yaml")


class Settings(ServiceSettings):
    """Gateway-specific settings on top of ServiceSettings."""

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    http_port: int = 8000
    routes_file: Path = DEFAULT_ROUTES_FILE
    user_service_addresses: str = "127.0.0.1:50051,127.0.0.1:50052"
    order_service_addresses: str = "127.0.0.1:8001"
    payment_service_addresses: str = "127.0.0.1:8002"
    jwt_private_key: str | None = None
    jwt_kid: str | None = None
    max_body_bytes: int = 1_048_576
