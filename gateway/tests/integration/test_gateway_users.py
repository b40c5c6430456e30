"""The transcoded user API through the whole gateway pipeline, with a real user service whose
outbox relay publishes user.updated: cached reads are evicted by the event, for every caller."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import yaml
from gateway.settings import DEFAULT_ROUTES_FILE
from shop_common.auth import SigningKey, TokenIssuer
from shop_testing.wait import eventually
from user_service.server import UserServer, create_server

from .conftest import StartGateway, bearer, user_service_settings

SHIPPED_ROUTES = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text(encoding="utf-8"))["routes"]

pytestmark = pytest.mark.infra


@pytest_asyncio.fixture
async def relaying_user_server(
    amqp_vhost_url: str, database_url: str, signing_key: SigningKey
) -> AsyncIterator[UserServer]:
    # amqp_vhost_url first: the vhost outlives the server.
    settings = user_service_settings(
        database_url, signing_key, amqp_url=amqp_vhost_url, outbox_relay_enabled=True
    )
    running, _ = await create_server(settings, "127.0.0.1:0")
    yield running
    await running.stop(grace=0.2)


USER_CACHE_TTL = next(r["cache_ttl_seconds"] for r in SHIPPED_ROUTES if r["name"] == "user")


async def test_user_reads_are_cached_and_evicted_by_the_user_updated_event(
    amqp_vhost_url: str,
    relaying_user_server: UserServer,
    start_gateway: StartGateway,
    issuer: TokenIssuer,
) -> None:
    gateway = await start_gateway(
        {"user-service": f"127.0.0.1:{relaying_user_server.port}"},
        routes=SHIPPED_ROUTES,
        cache_events_enabled=True,
        amqp_url=amqp_vhost_url,
    )
    async with asyncio.timeout(20):
        await gateway.app.state.cache_events.started.wait()
    admin = issuer.issue("900000", ["admin"])  # not an id the fresh database hands out
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    async with gateway.client() as client:
        created = await client.post(
            "/api/users",
            json={"email": email, "name": "Ada", "password": "pw-12345678", "roles": ["user"]},
            headers=bearer(admin),
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        login = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": email, "password": "pw-12345678"},
        )
        ada = login.json()["access_token"]
        path = f"/api/users/{user_id}"
        for token in (ada, admin):
            first = await client.get(path, headers=bearer(token))
            second = await client.get(path, headers=bearer(token))
            assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
            assert second.json() == first.json()
        etag = second.headers["etag"]
        not_modified = await client.get(path, headers={**bearer(admin), "If-None-Match": etag})
        assert not_modified.status_code == 304
        patched = await client.patch(path, json={"name": "Ada L."}, headers=bearer(ada))
        assert patched.status_code == 200, patched.text
        # Rate-limit headers on streamed-through (transcoded) and cached answers alike.
        assert patched.headers["ratelimit-policy"] == '"default";q=600;w=60'
        assert second.headers["ratelimit-policy"] == '"default";q=600;w=60'
        # The relay publishes user.updated; the gateway evicts Ada's scope and every entry
        # about user_id, so the admin's cached copy goes too.
        # Both within half the entries' TTL, from one deadline: a MISS any later could be the
        # entry expiring, not the event evicting it.
        misses: dict[str, httpx.Response] = {}

        async def both_evicted() -> bool:
            for token in (ada, admin):
                if token not in misses:
                    response = await client.get(path, headers=bearer(token))
                    if response.headers["x-cache"] == "MISS":
                        misses[token] = response
            return len(misses) == 2

        await eventually(
            both_evicted, timeout=USER_CACHE_TTL / 2, interval=0.05, what="both entries evicted"
        )
        assert [r.json()["name"] for r in misses.values()] == ["Ada L.", "Ada L."]
    await gateway.stop()  # before the vhost goes
