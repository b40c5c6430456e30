"""schemathesis against the catalog's own OpenAPI: no 5xx, every response as documented.

The app runs in this process under a real uvicorn on a thread with its own event loop (real
database, Redis and broker behind it); schemathesis's synchronous client calls it over HTTP
(shop_testing.fuzz), anonymously and with a user's and an admin's token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from catalog_service.entrypoints.http import create_app
from catalog_service.settings import Settings
from shop_common.auth import TokenIssuer
from shop_testing.fuzz import fuzz_app, identities, serve_in_thread

pytestmark = pytest.mark.infra

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def served_app(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(base URL, OpenAPI document) of the app served by uvicorn on an ephemeral port."""
    app = create_app(make_settings())
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
            "GET /products",
            "GET /products/{sku}",
            "GET /products/{sku}/image",
            "GET /products/{sku}/stock",
            "PUT /products/{sku}/price",
            "POST /products/{sku}/restock",
        },
        examples=EXAMPLES_PER_OPERATION,
    )
