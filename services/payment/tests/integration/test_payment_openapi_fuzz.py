"""schemathesis against the app's own OpenAPI: no 5xx, every response as documented.

The app runs in this process under a real uvicorn on a thread with its own event loop (real
database and broker behind it); schemathesis's synchronous client calls it over HTTP
(shop_testing.fuzz).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from payment_service.entrypoints.http import create_app
from shop_common.auth import SigningKey, TokenIssuer
from shop_testing.fuzz import fuzz_app, identities, serve_in_thread

pytestmark = pytest.mark.infra

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def served_app(
    database_url: str, amqp_vhost_url: str, signing_key: SigningKey, request: Any
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(base URL, OpenAPI document) of the app served by uvicorn on an ephemeral port."""
    make_settings = request.getfixturevalue("make_settings_fn")
    app = create_app(make_settings(database_url, amqp_vhost_url, signing_key))
    with serve_in_thread(app) as base_url:
        yield base_url, app.openapi()


def test_no_operation_answers_5xx_or_off_schema(
    served_app: tuple[str, dict[str, Any]], issuer: TokenIssuer
) -> None:
    base_url, document = served_app
    fuzz_app(
        document,
        base_url,
        identities(issuer),
        must_include={
            "GET /payments/{payment_id}",
            "GET /payments",
            "GET /payments/admin/provider",
            "PUT /payments/admin/provider",
        },
        examples=EXAMPLES_PER_OPERATION,
    )
