"""Settings derived values and refusals; the page-token codec's tamper evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from order_service.domain.listing import Cursor, InvalidPageTokenError, OrderFilter, PageTokenCodec
from order_service.domain.order import OrderStatus
from order_service.settings import Settings
from pydantic import ValidationError


def test_cache_namespace_follows_the_database_unless_set() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/t_orders_1"
    assert Settings(database_url=url).cache_namespace == "order-service:t_orders_1:users"
    explicit = Settings(database_url=url, user_cache_namespace="x:users")
    assert explicit.cache_namespace == "x:users"


def test_production_refuses_the_development_page_token_secret() -> None:
    keys = {"k": "pem"}
    with pytest.raises(ValidationError, match="PAGE_TOKEN_SECRET"):
        Settings(environment="production", jwt_public_keys=keys)
    Settings(environment="production", jwt_public_keys=keys, page_token_secret="s3cr3t-prod")


def test_page_tokens_round_trip_and_refuse_tampering_and_other_filters() -> None:
    codec = PageTokenCodec("k")
    mine = OrderFilter(user_id=7, status=OrderStatus.PAID)
    cursor = Cursor(datetime(2026, 11, 25, 16, 0, 0, 123456, tzinfo=UTC), uuid4())
    token = codec.encode(cursor, mine)
    assert codec.decode(token, mine) == cursor
    with pytest.raises(InvalidPageTokenError):
        codec.decode(token, OrderFilter(user_id=8, status=OrderStatus.PAID))
    with pytest.raises(InvalidPageTokenError):
        PageTokenCodec("other key").decode(token, mine)
    flipped = token[:10] + ("B" if token[10] == "A" else "A") + token[11:]
    for broken in (token[:-3], "", "é", flipped):
        with pytest.raises(InvalidPageTokenError):
            codec.decode(broken, mine)
