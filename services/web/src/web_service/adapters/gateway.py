"""The public API behind the gateway, called by the web service for a shopper.

- sign-up: the user service creates shopper accounts for a `registrar` (and an admin), so the
  web service logs in as its sign-up account (SIGNUP_ACCOUNT_EMAIL/PASSWORD, role registrar) at POST /auth/token, keeps the token until
  shortly before it expires, and calls POST /api/users with the role `user` only;
- orders: GET /api/orders/{id} with the shopper's own token (the order service checks it).

A 4xx answer is the caller's (Refused/InvalidSignUp/AccountExists), a 429, 5xx or a connection
failure is Unavailable (→ 503 + Retry-After); nothing internal is passed on.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from web_service.domain.errors import AccountExists, InvalidSignUp, Refused, Unavailable
from web_service.domain.orders import OrderState

REFRESH_MARGIN_SECONDS = 60.0


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else response.reason_phrase


def _unavailable(response: httpx.Response) -> Unavailable:
    try:
        retry_after = float(response.headers.get("retry-after") or 1)
    except ValueError:
        retry_after = 1.0
    return Unavailable("the shop cannot answer now; try again shortly", min(retry_after, 30.0))


class GatewayClient:
    """One pooled httpx client to GATEWAY_URL; close() when done."""

    def __init__(
        self, base_url: str, *, timeout: float, account_email: str, account_password: str
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._account = (account_email, account_password)
        self._service_token_cache: tuple[str, float] | None = None

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable("the shop cannot be reached now; try again shortly") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _unavailable(response)
        return response

    async def _service_token(self) -> str:
        if self._service_token_cache and self._service_token_cache[1] > time.monotonic():
            return self._service_token_cache[0]
        email, password = self._account
        response = await self._request(
            "POST",
            "/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        if response.status_code != 200:
            # The sign-up account is missing or its password wrong: an operator's problem.
            raise Unavailable("sign-up is not available now", 30.0)
        body = response.json()
        expires = float(body.get("expires_in", 300)) - REFRESH_MARGIN_SECONDS
        self._service_token_cache = (
            str(body["access_token"]),
            time.monotonic() + max(expires, 1.0),
        )
        return self._service_token_cache[0]

    async def create_shopper(self, email: str, name: str, password: str) -> int:
        """POST /api/users as the sign-up account; the new account's id."""
        token = await self._service_token()
        response = await self._request(
            "POST",
            "/api/users",
            json={"email": email, "name": name, "password": password, "roles": ["user"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 201:
            return int(response.json()["id"])
        if response.status_code == 409:
            raise AccountExists("an account with this email exists; sign in instead")
        if response.status_code in (400, 422):
            raise InvalidSignUp(_detail(response))
        if response.status_code in (401, 403):
            self._service_token_cache = None
            raise Unavailable("sign-up is not available now", 5.0)
        raise Unavailable("sign-up is not available now")

    async def order_state(self, token: str, order_id: str) -> OrderState:
        """GET /api/orders/{id} with the shopper's token."""
        response = await self._request(
            "GET",
            f"/api/orders/{order_id}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        if response.status_code != 200:
            raise Refused(response.status_code, _detail(response))
        body = response.json()
        return OrderState(
            order_id=str(body["id"]),
            status=str(body["status"]),
            failure_reason=body.get("failure_reason"),
            updated_at=str(body.get("updated_at", "")),
        )
