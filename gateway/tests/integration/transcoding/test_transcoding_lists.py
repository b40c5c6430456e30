"""ListUsers through the router: paged JSON with next_page_token, and NDJSON across pages."""

from __future__ import annotations

import json
import uuid

import pytest
from gateway.entrypoints.transcoding import STREAMS_ACTIVE
from shop_common.auth import TokenIssuer
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra
NDJSON = "application/x-ndjson"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _create(gateway, admin_token: str, domain: str, count: int, role: str = "user") -> list:
    ids = []
    for i in range(count):
        response = await gateway.http.post(
            "/api/users",
            json={
                "email": f"p{i}@{domain}",
                "name": f"P{i}",
                "password": "long password 1",
                "roles": [role],
            },
            headers=bearer(admin_token),
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_paged_json_walks_every_page_with_next_page_token(gateway, admin_token) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    ids = await _create(gateway, admin_token, domain, 5)
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        params = {"page_size": "2", "email": f"@{domain}"} | (
            {"page_token": token} if token else {}
        )
        response = await gateway.http.get("/api/users", params=params, headers=bearer(admin_token))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"users", "next_page_token"}
        seen += [u["id"] for u in body["users"]]
        pages += 1
        if body["next_page_token"] is None:
            break
        token = body["next_page_token"]
    assert seen == sorted(ids)
    assert pages == 3


async def test_ndjson_streams_every_user_across_several_pages(gateway, admin_token) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    ids = await _create(gateway, admin_token, domain, 5)
    headers = {**bearer(admin_token), "Accept": NDJSON}
    params = {"page_size": "2", "filter": f"email:@{domain}"}
    async with gateway.http.stream("GET", "/api/users", params=params, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == NDJSON
        lines = [json.loads(line) async for line in response.aiter_lines() if line.strip()]
    assert [u["id"] for u in lines] == sorted(ids)
    assert all(u["email"].endswith(f"@{domain}") for u in lines)


async def test_role_filter_and_raw_filter_combine(gateway, admin_token) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    await _create(gateway, admin_token, domain, 2, role="user")
    admins = await _create(gateway, admin_token, f"a.{domain}", 2, role="auditor")
    response = await gateway.http.get(
        "/api/users",
        params={"filter": f"email:{domain}", "role": "auditor"},
        headers=bearer(admin_token),
    )
    assert [u["id"] for u in response.json()["users"]] == admins


async def test_list_errors_keep_their_status_before_the_stream_starts(
    gateway, issuer: TokenIssuer, admin_token
) -> None:
    as_user = {**bearer(issuer.issue("77", ["user"])), "Accept": NDJSON}
    denied = await gateway.http.get("/api/users", headers=as_user)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    bad_token = await gateway.http.get(
        "/api/users", params={"page_token": "forged"}, headers=bearer(admin_token)
    )
    assert bad_token.status_code == 400
    assert bad_token.json()["grpc_status"] == "INVALID_ARGUMENT"
    for params in ({"page_size": "0"}, {"page_size": "1001"}, {"email": "has space"}):
        response = await gateway.http.get("/api/users", params=params, headers=bearer(admin_token))
        assert response.status_code == 422, params


async def test_an_ndjson_stream_is_released_when_done_and_when_the_client_leaves_early(
    gateway, admin_token
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    await _create(gateway, admin_token, domain, 3)
    gauge = STREAMS_ACTIVE.labels("ndjson")
    before = gauge._value.get()
    headers = {**bearer(admin_token), "Accept": NDJSON}
    params = {"page_size": "1", "email": f"@{domain}"}
    async with gateway.http.stream("GET", "/api/users", params=params, headers=headers) as whole:
        assert len([line async for line in whole.aiter_lines() if line]) == 3
    async with gateway.http.stream("GET", "/api/users", params=params, headers=headers) as early:
        first = await anext(early.aiter_lines())
        assert json.loads(first)["email"].endswith(domain)
    await eventually(lambda: gauge._value.get() == before, what="both list streams closed")
