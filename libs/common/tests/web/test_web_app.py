"""service_app: the lifespan holds what the composition root started, and only while it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from shop_common.auth import AuthError, CachingTokenVerifier, TokenIssuer, generate_signing_key
from shop_common.settings import ServiceSettings
from shop_common.web import service_app, token_verifier


async def test_the_app_holds_what_start_yielded_only_between_start_and_stop() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def start() -> AsyncIterator[object]:
        events.append("started")
        yield "the running service"
        events.append("stopped")

    settings = ServiceSettings()
    app = service_app(title="T", description="d", settings=settings, start=start)
    assert app.state.app is None and app.state.settings is settings
    async with app.router.lifespan_context(app):
        assert app.state.app == "the running service"
        assert events == ["started"]
    assert app.state.app is None
    assert events == ["started", "stopped"]


async def test_an_unknown_trailing_slash_is_a_404_never_a_redirect() -> None:
    @asynccontextmanager
    async def start() -> AsyncIterator[object]:
        yield object()

    app = service_app(title="T", description="d", settings=ServiceSettings(), start=start)

    @app.get("/things")
    async def things() -> dict[str, str]:
        return {"ok": "yes"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        assert (await client.get("/things")).status_code == 200
        slashed = await client.get("/things/")
    assert slashed.status_code == 404
    assert "location" not in slashed.headers


def test_the_token_verifier_checks_the_settings_keys_issuer_and_audience() -> None:
    key = generate_signing_key("k1")
    settings = ServiceSettings(jwt_public_keys={key.kid: key.public_pem})
    verifier = token_verifier(settings)
    assert isinstance(verifier, CachingTokenVerifier)
    token = TokenIssuer(key, settings.jwt_issuer, settings.jwt_audience).issue("7", ["user"])
    assert verifier.verify(token).subject == "7"
    foreign = TokenIssuer(key, settings.jwt_issuer, "someone-else").issue("7", ["user"])
    with pytest.raises(AuthError):
        verifier.verify(foreign)
