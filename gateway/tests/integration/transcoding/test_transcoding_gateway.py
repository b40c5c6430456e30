"""The transcoded user API through the whole gateway (create_app with its real routes.yaml):
pipeline auth and cache in front, NDJSON and SSE streamed through it, a dead user service."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import pytest_asyncio
import yaml
from gateway.settings import DEFAULT_ROUTES_FILE
from shop_common.auth import TokenIssuer
from shop_testing.wait import eventually
from user_service.server import UserServer

from ..conftest import RunningGateway, StartGateway, bearer

pytestmark = pytest.mark.infra
REAL_ROUTES: list[dict[str, Any]] = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text())["routes"]


@pytest_asyncio.fixture
async def gateway(start_gateway: StartGateway, user_server: UserServer) -> RunningGateway:
    return await start_gateway(
        {"user-service": f"127.0.0.1:{user_server.port}"},
        routes=REAL_ROUTES,
        user_call_timeout_seconds=20.0,  # argon2 on a loaded 2-core machine
    )


@pytest.fixture
def admin(issuer: TokenIssuer) -> dict[str, str]:
    return bearer(issuer.issue("9000001", ["admin"]))


async def _create(gateway: RunningGateway, admin: dict[str, str], domain: str) -> dict[str, Any]:
    async with gateway.client() as http:
        response = await http.post(
            "/api/users",
            json={
                "email": f"{uuid.uuid4().hex[:10]}@{domain}",
                "name": "Ada",
                "password": "correct horse battery",
                "roles": ["user"],
            },
            headers=admin,
        )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def test_crud_through_the_pipeline_with_the_cache_in_front(
    gateway: RunningGateway, admin: dict[str, str], issuer: TokenIssuer
) -> None:
    user = await _create(gateway, admin, "crud.example.com")
    own = bearer(issuer.issue(str(user["id"]), ["user"]))
    url = f"/api/users/{user['id']}"
    async with gateway.client() as http:
        first = await http.get(url, headers=own)
        second = await http.get(url, headers=own)
        assert (first.status_code, second.status_code) == (200, 200)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
        assert second.json() == user
        patched = await http.patch(url, json={"name": "Renamed"}, headers=own)
        assert patched.status_code == 200
        assert patched.json()["name"] == "Renamed"
        unknown = await http.patch(url, json={"shoe_size": 44}, headers=own)
        assert unknown.status_code == 422
        assert unknown.headers["content-type"] == "application/problem+json"
        forged = await http.get(url, headers=bearer("not-a-token"))
        assert forged.status_code == 401  # refused by the gateway before any gRPC call
        assert "www-authenticate" in forged.headers
        deleted = await http.delete(url, headers=admin)
        assert deleted.status_code == 204


async def test_ndjson_and_sse_stream_through_the_pipeline(
    gateway: RunningGateway, user_server: UserServer, admin: dict[str, str]
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    created = [await _create(gateway, admin, domain) for _ in range(3)]
    async with gateway.client() as http:
        params = {"page_size": "2", "email": f"@{domain}"}
        headers = {**admin, "Accept": "application/x-ndjson"}
        async with http.stream("GET", "/api/users", params=params, headers=headers) as listing:
            assert listing.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) async for line in listing.aiter_lines() if line]
        assert [u["id"] for u in lines] == [u["id"] for u in created]

        target = created[0]["id"]
        async with http.stream(
            "GET", "/api/users/updates", params={"ids": str(target)}, headers=admin
        ) as events:
            assert events.status_code == 200
            assert user_server.hub.subscriber_count == 1
            async with gateway.client() as other:
                changed = await other.patch(
                    f"/api/users/{target}", json={"name": "Seen"}, headers=admin
                )
                assert changed.status_code == 200
            async with asyncio.timeout(15):
                async for line in events.aiter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line.removeprefix("data:"))
                        break
        assert (event["user_id"], event["user"]["name"]) == (target, "Seen")
    await eventually(lambda: not user_server.hub.subscriber_count, what="the subscription gone")


async def test_a_dead_user_service_is_503_with_retry_after_through_the_gateway(
    gateway: RunningGateway, user_server: UserServer, admin: dict[str, str]
) -> None:
    await user_server.stop(grace=0)
    async with gateway.client() as http:
        response = await http.get("/api/users/1", headers=admin)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
