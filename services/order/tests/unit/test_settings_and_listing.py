"""Settings derived values and refusals; the page-token codec's tamper evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from order_service.domain.listing import Cursor, InvalidPageTokenError, OrderFilter, OrderPageTokens
from order_service.domain.order import OrderStatus
from order_service.settings import DEV_PAGE_TOKEN_SECRET, Settings
from pydantic import ValidationError
from shop_common.pagination import sign_token
from shop_common.settings import PLACEHOLDER_SECRETS
from shop_testing.page_tokens import forged_page_tokens


def test_cache_namespace_follows_the_database_unless_set() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/t_orders_1"
    assert Settings(database_url=url).cache_namespace == "order-service:t_orders_1:users"
    explicit = Settings(database_url=url, user_cache_namespace="x:users")
    assert explicit.cache_namespace == "x:users"


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize("secret", [DEV_PAGE_TOKEN_SECRET, *PLACEHOLDER_SECRETS])
def test_outside_development_the_development_page_token_secret_is_refused(
    environment: str, secret: str
) -> None:
    keys = {"k": "pem"}
    with pytest.raises(ValidationError, match="PAGE_TOKEN_SECRET"):
        Settings(environment=environment, jwt_public_keys=keys, page_token_secret=secret)
    Settings(environment=environment, jwt_public_keys=keys, page_token_secret="s3cr3t-prod")


def test_production_refuses_the_default_when_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_PUBLIC_KEYS", '{"k": "pem"}')
    monkeypatch.delenv("PAGE_TOKEN_SECRET", raising=False)
    with pytest.raises(ValidationError, match="PAGE_TOKEN_SECRET"):
        Settings()
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "s3cr3t-prod")
    assert Settings().page_token_secret == "s3cr3t-prod"


def test_development_keeps_its_default() -> None:
    assert Settings(environment="development").page_token_secret == DEV_PAGE_TOKEN_SECRET


def test_page_tokens_round_trip_and_refuse_tampering_and_other_filters() -> None:
    codec = OrderPageTokens("k")
    mine = OrderFilter(user_id=7, status=OrderStatus.PAID)
    cursor = Cursor(datetime(2026, 11, 25, 16, 0, 0, 123456, tzinfo=UTC), uuid4())
    token = codec.encode(cursor, mine)
    assert codec.decode(token, mine) == cursor
    with pytest.raises(InvalidPageTokenError):
        codec.decode(token, OrderFilter(user_id=8, status=OrderStatus.PAID))
    with pytest.raises(InvalidPageTokenError):
        OrderPageTokens("other key").decode(token, mine)
    flipped = token[:10] + ("B" if token[10] == "A" else "A") + token[11:]
    for broken in (token[:-3], "", "é", flipped):
        with pytest.raises(InvalidPageTokenError):
            codec.decode(broken, mine)


MINE = OrderFilter(user_id=7)
VALID_BODY = {"t": "2026-11-25T16:00:00+00:00", "i": str(uuid4()), "f": MINE.canonical}


def test_the_forgeries_start_from_a_body_the_codec_accepts() -> None:
    cursor = OrderPageTokens("k").decode(sign_token("k", json.dumps(VALID_BODY).encode()), MINE)
    assert cursor == Cursor(datetime(2026, 11, 25, 16, tzinfo=UTC), UUID(VALID_BODY["i"]))


@pytest.mark.parametrize(("label", "token"), sorted(forged_page_tokens("k", VALID_BODY).items()))
def test_validly_signed_tokens_of_the_wrong_shape_are_invalid_page_tokens(
    label: str, token: str
) -> None:
    with pytest.raises(InvalidPageTokenError):
        OrderPageTokens("k").decode(token, MINE)


@pytest.mark.parametrize(
    "t", ["0001-01-01T00:00:00+05:00", "2026-11-25T16:00:00", "1764086400", "2026-11-25"]
)
def test_cursor_timestamps_must_have_an_offset_and_fit_in_utc(t: str) -> None:
    token = sign_token("k", json.dumps({**VALID_BODY, "t": t}).encode())
    with pytest.raises(InvalidPageTokenError):
        OrderPageTokens("k").decode(token, MINE)


def test_the_process_refuses_to_start_in_production_with_the_development_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PAGE_TOKEN_SECRET", "ENVIRONMENT")}
    env.update(ENVIRONMENT="production", JWT_PUBLIC_KEYS='{"k": "pem"}', HTTP_PORT="1")
    done = subprocess.run(
        [sys.executable, "-m", "order_service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "PAGE_TOKEN_SECRET must be set" in done.stderr
