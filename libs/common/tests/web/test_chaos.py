"""Chaos switches (shop_common.web.chaos) on a small FastAPI app: admin only, off in
production, latency and injected 503s on the matching prefix only, never on health or metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.settings import ServiceSettings
from shop_common.web import instrument_app
from shop_common.web.chaos import install_chaos

KEY: SigningKey = generate_signing_key("chaos-test")
ISSUER = TokenIssuer(KEY, "shop-gateway", "shop")


def bearer(roles: list[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {ISSUER.issue('1', roles)}"}


def admin() -> dict[str, str]:
    """An admin's header, issued when used: a token made at import would expire (15 min) before
    a late test in a long session ran."""
    return bearer(["admin"])


def _app(environment: str) -> FastAPI:
    settings = ServiceSettings(
        environment=environment,  # type: ignore[arg-type]
        jwt_public_keys={KEY.kid: KEY.public_pem},
    )
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    @app.get("/other")
    async def other() -> dict[str, str]:
        return {"ok": "yes"}

    instrument_app(app)
    install_chaos(app, settings)
    return app


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app("development"))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


async def test_no_rule_by_default(http: httpx.AsyncClient) -> None:
    assert (await http.get("/admin/chaos", headers=admin())).json() == []
    assert (await http.get("/orders/1")).status_code == 200


async def test_the_switches_are_for_admins_only(http: httpx.AsyncClient) -> None:
    rule = {"path_prefix": "/orders", "error_ratio": 1.0}
    for method in ("GET", "PUT", "DELETE"):
        body = rule if method == "PUT" else None
        anonymous = await http.request(method, "/admin/chaos", json=body)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        user = await http.request(method, "/admin/chaos", json=body, headers=bearer(["user"]))
        assert user.status_code == 403
    assert (await http.get("/orders/1")).status_code == 200  # nothing was set


async def test_an_error_ratio_of_one_fails_the_prefix_only(http: httpx.AsyncClient) -> None:
    rule = {"path_prefix": "/orders", "error_ratio": 1.0}
    assert (await http.put("/admin/chaos", json=rule, headers=admin())).status_code == 200
    failed = await http.get("/orders/7")
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "1"
    assert failed.json()["detail"] == "injected by a chaos switch"
    assert "x-request-id" in failed.headers  # innermost: the request context still wraps it
    assert (await http.get("/other")).status_code == 200
    for untouched in ("/health", "/ready", "/metrics"):
        assert (await http.get(untouched)).status_code == 200, untouched
    assert (await http.delete("/admin/chaos", headers=admin())).json() == []
    assert (await http.get("/orders/7")).status_code == 200


async def test_latency_is_added(http: httpx.AsyncClient) -> None:
    rule = {"path_prefix": "/", "latency_ms": 200}
    await http.put("/admin/chaos", json=rule, headers=admin())
    started = time.perf_counter()
    assert (await http.get("/other")).status_code == 200
    assert time.perf_counter() - started >= 0.2
    # a rule of 0 and 0 removes itself
    await http.put("/admin/chaos", json={"path_prefix": "/"}, headers=admin())
    assert (await http.get("/admin/chaos", headers=admin())).json() == []


@pytest.mark.parametrize(
    "rule",
    [
        {"path_prefix": "orders"},
        {"path_prefix": "/x", "error_ratio": 2},
        {"path_prefix": "/x", "latency_ms": -1},
        {"path_prefix": "/x", "latency_ms": 60_000},
        {"path_prefix": "/x", "error_ratio": "0.5"},
        {"path_prefix": "/x", "other": 1},
        {"path_prefix": "/<script>"},
    ],
)
async def test_a_bad_rule_is_a_422(http: httpx.AsyncClient, rule: dict[str, object]) -> None:
    response = await http.put("/admin/chaos", json=rule, headers=admin())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_production_refuses_every_switch() -> None:
    transport = httpx.ASGITransport(app=_app("production"))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        rule = {"path_prefix": "/orders", "error_ratio": 1.0}
        refused = await http.put("/admin/chaos", json=rule, headers=admin())
        assert refused.status_code == 409
        assert refused.json()["detail"] == "chaos switches are off in production"
        assert (await http.delete("/admin/chaos", headers=admin())).status_code == 409
        assert (await http.get("/orders/1")).status_code == 200
