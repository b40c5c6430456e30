"""A typed client of the gateway's public API (the only door the demo, the e2e suite and the
load generator use). Every path of the API is here, in one place."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

TOKEN_PATH = "/auth/token"
JWKS_PATH = "/.well-known/jwks.json"
USERS_PATH = "/api/users"
ORDERS_PATH = "/api/orders"
PAYMENTS_PATH = "/api/payments"
PRODUCTS_PATH = "/api/products"
PROVIDER_PATH = "/api/payments/admin/provider"
TERMINAL_ORDER_STATES = frozenset({"PAID", "PAYMENT_FAILED", "CANCELLED", "REFUNDED", "REJECTED"})


class ApiError(Exception):
    """An unexpected status from the gateway, with its problem details."""

    def __init__(self, response: httpx.Response, expected: str) -> None:
        self.status = response.status_code
        self.response = response
        detail = response.text[:300]
        super().__init__(
            f"{response.request.method} {response.request.url.path} → {response.status_code} "
            f"(expected {expected}): {detail}"
        )


@dataclass(frozen=True)
class Item:
    """An order line: what and how many (the shop prices it at its current price)."""

    sku: str
    quantity: int

    def to_json(self) -> dict[str, Any]:
        """As the order API takes it."""
        return {"sku": self.sku, "quantity": self.quantity}


def bearer(token: str | None) -> dict[str, str]:
    """The Authorization header for a token (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def check(response: httpx.Response, *expected: int) -> httpx.Response:
    """The response if its status is one of expected; ApiError otherwise."""
    if response.status_code not in expected:
        raise ApiError(response, "/".join(map(str, expected)))
    return response


class ShopClient:
    """The gateway's API over one shared httpx.AsyncClient."""

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Idle connections are dropped before uvicorn's 5 s keep-alive closes them, so a request
        # never races the server closing its connection (httpx would not resend a POST).
        limits = httpx.Limits(max_connections=200, keepalive_expiry=2.0)
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, limits=limits)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def token(self, email: str, password: str) -> str:
        """OAuth2 password grant: an RS256 access token."""
        response = await self.http.post(
            TOKEN_PATH, data={"grant_type": "password", "username": email, "password": password}
        )
        body: dict[str, Any] = check(response, 200).json()
        return str(body["access_token"])

    async def create_user(
        self, token: str, email: str, name: str, password: str, roles: Sequence[str] = ("user",)
    ) -> dict[str, Any]:
        """POST /api/users (admin)."""
        response = await self.http.post(
            USERS_PATH,
            json={"email": email, "name": name, "password": password, "roles": list(roles)},
            headers=bearer(token),
        )
        user: dict[str, Any] = check(response, 200, 201).json()
        return user

    async def get_user(self, token: str, user_id: int, **headers: str) -> httpx.Response:
        """GET /api/users/{id}: the raw response (the demo reads X-Cache and ETag)."""
        return await self.http.get(f"{USERS_PATH}/{user_id}", headers={**bearer(token), **headers})

    async def update_user(
        self, token: str, user_id: int, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PATCH /api/users/{id} with only the given fields (becomes a field mask)."""
        response = await self.http.patch(
            f"{USERS_PATH}/{user_id}", json=dict(fields), headers=bearer(token)
        )
        user: dict[str, Any] = check(response, 200).json()
        return user

    async def stream_users(self, token: str, **params: str) -> AsyncIterator[dict[str, Any]]:
        """GET /api/users as NDJSON: one user per line, as the gRPC stream delivers them."""
        headers = {**bearer(token), "Accept": "application/x-ndjson"}
        async with self.http.stream("GET", USERS_PATH, params=params, headers=headers) as response:
            check(response, 200)
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    @contextlib.asynccontextmanager
    async def user_updates(
        self, token: str, user_ids: Sequence[int]
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Server-Sent Events of updates to these users.

        Entering returns once the response headers arrived, which the gateway sends only after
        the user service attached the subscription: every change made from then on is delivered.
        """
        params = {"ids": ",".join(map(str, user_ids))}
        headers = {**bearer(token), "Accept": "text/event-stream"}
        async with self.http.stream(
            "GET", f"{USERS_PATH}/updates", params=params, headers=headers, timeout=None
        ) as response:
            check(response, 200)
            yield _sse_events(response)

    async def place_order(
        self,
        token: str,
        items: Sequence[Item],
        currency: str | None = "EUR",
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST /api/orders with an Idempotency-Key (raw response: 201, 503 with Retry-After...);
        `headers` adds to them (the demo's trace step sends a traceparent)."""
        headers = {
            **(headers or {}),
            **bearer(token),
            "Idempotency-Key": idempotency_key or uuid.uuid4().hex,
        }
        body: dict[str, Any] = {"items": [i.to_json() for i in items]}
        if currency is not None:
            body["currency"] = currency
        return await self.http.post(ORDERS_PATH, json=body, headers=headers)

    async def get_order(self, token: str, order_id: str) -> dict[str, Any]:
        """GET /api/orders/{id}."""
        order: dict[str, Any] = check(
            await self.http.get(f"{ORDERS_PATH}/{order_id}", headers=bearer(token)), 200
        ).json()
        return order

    async def cancel_order(self, token: str, order_id: str) -> dict[str, Any]:
        """POST /api/orders/{id}/cancel."""
        response = await self.http.post(f"{ORDERS_PATH}/{order_id}/cancel", headers=bearer(token))
        order: dict[str, Any] = check(response, 200, 202).json()
        return order

    async def payments_for(self, token: str, order_id: str) -> list[dict[str, Any]]:
        """GET /api/payments?order_id=: every payment (charge or refund) of an order."""
        response = await self.http.get(
            PAYMENTS_PATH, params={"order_id": order_id}, headers=bearer(token)
        )
        body = check(response, 200).json()
        items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
        return items

    async def products(self, **params: str) -> dict[str, Any]:
        """GET /api/products (public): one page of the catalog (q, category, page_token...)."""
        page: dict[str, Any] = check(await self.http.get(PRODUCTS_PATH, params=params), 200).json()
        return page

    async def product(self, sku: str) -> dict[str, Any]:
        """GET /api/products/{sku} (public): one product with its current price."""
        found: dict[str, Any] = check(await self.http.get(f"{PRODUCTS_PATH}/{sku}"), 200).json()
        return found

    async def set_price(self, admin_token: str, sku: str, price: Decimal) -> dict[str, Any]:
        """PUT /api/products/{sku}/price (admin): publishes product.price_changed."""
        response = await self.http.put(
            f"{PRODUCTS_PATH}/{sku}/price", json={"price": str(price)}, headers=bearer(admin_token)
        )
        product: dict[str, Any] = check(response, 200).json()
        return product

    async def stock(self, sku: str) -> int:
        """GET /api/products/{sku}/stock (public): units available now."""
        response = await self.http.get(f"{PRODUCTS_PATH}/{sku}/stock")
        return int(check(response, 200).json()["available"])

    async def restock(self, admin_token: str, sku: str, quantity: int) -> int:
        """POST /api/products/{sku}/restock (admin): the new available stock."""
        response = await self.http.post(
            f"{PRODUCTS_PATH}/{sku}/restock",
            json={"quantity": quantity},
            headers=bearer(admin_token),
        )
        return int(check(response, 200).json()["available"])

    async def set_provider(self, admin_token: str, **switches: Any) -> dict[str, Any]:
        """Change the simulated payment provider's fault switches at run time (admin)."""
        response = await self.http.put(PROVIDER_PATH, json=switches, headers=bearer(admin_token))
        state: dict[str, Any] = check(response, 200).json()
        return state


async def _sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON `data` of each event of a text/event-stream response (comments skipped)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line.strip() and data:
            yield json.loads("\n".join(data))
            data = []
