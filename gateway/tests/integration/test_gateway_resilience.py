"""Breakers, balancing and retries through the running gateway, against real backends."""

from __future__ import annotations

import collections

import pytest
from shop_common.auth import TokenIssuer
from shop_testing.wait import eventually

from .conftest import Backend, StartGateway, bearer, start_backend

pytestmark = pytest.mark.infra


async def test_killed_backend_opens_the_breaker_then_it_closes_when_the_backend_returns(
    start_gateway: StartGateway, issuer: TokenIssuer
) -> None:
    backend = await start_backend("a")
    port = backend.port
    recovery = 0.5
    gateway = await start_gateway(
        {"order-service": backend.address},
        instance_breaker_failures=3,
        breaker_recovery_seconds=recovery,
    )
    headers = bearer(issuer.issue("7", []))
    try:
        async with gateway.client() as client:
            assert (await client.get("/api/orders/1", headers=headers)).status_code == 200
            await backend.stop()
            failed = await client.get("/api/orders/1", headers=headers)
            assert failed.status_code == 502  # three refused attempts (1 + 2 retries) trip it
            rejected = await client.get("/api/orders/1", headers=headers)
            assert rejected.status_code == 503
            assert rejected.headers["content-type"] == "application/problem+json"
            assert int(rejected.headers["retry-after"]) >= 1
            assert "ejected" in rejected.json()["detail"]
            metrics = (await client.get("/metrics")).text
            assert (
                f'circuit_breaker_state{{name="order-service@127.0.0.1:{port}",state="open"}} 1.0'
                in metrics
            )
            backend = await start_backend("a", port=port)

            async def served_again() -> bool:
                return (await client.get("/api/orders/1", headers=headers)).status_code == 200

            # The ejected instance gets a trial call after the breaker's recovery time.
            await eventually(served_again, timeout=20 * recovery, interval=0.1, what="200 again")
            after = [await client.get("/api/orders/1", headers=headers) for _ in range(3)]
            assert [r.status_code for r in after] == [200, 200, 200]
    finally:
        await backend.stop()


async def test_round_robin_spreads_over_two_instances_and_skips_the_dead_one(
    start_gateway: StartGateway, issuer: TokenIssuer
) -> None:
    a, b = await start_backend("a"), await start_backend("b")
    gateway = await start_gateway({"order-service": f"{a.address},{b.address}"})
    headers = bearer(issuer.issue("7", []))
    try:
        async with gateway.client() as client:
            spread = [await client.get("/api/orders/1", headers=headers) for _ in range(10)]
            assert collections.Counter(r.json()["served_by"] for r in spread) == {"a": 5, "b": 5}
            await a.stop()
            survivors = [await client.get("/api/orders/1", headers=headers) for _ in range(10)]
    finally:
        await a.stop()
        await b.stop()
    # A GET that met the dead instance was retried on the live one: no client saw a failure.
    assert [r.status_code for r in survivors] == [200] * 10
    assert {r.json()["served_by"] for r in survivors} == {"b"}


async def test_post_is_never_retried_without_an_idempotency_key(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    headers = bearer(issuer.issue("7", []))
    async with gateway.client() as client:
        post = await client.post("/api/orders/status/503", headers=headers, json={})
        posts = backend.hits("POST", "/orders/status/503")
        keyed = await client.post(
            "/api/orders/status/503", headers={**headers, "Idempotency-Key": "k-1"}, json={}
        )
        keyed_posts = backend.hits("POST", "/orders/status/503") - posts
        get = await client.get("/api/orders/status/503", headers=headers)
        bad_request = await client.get("/api/orders/status/400", headers=headers)
    assert (post.status_code, posts) == (503, 1)
    assert (keyed.status_code, keyed_posts) == (503, 3)  # 1 + the route's 2 retries
    assert get.status_code == 503
    assert backend.hits("GET", "/orders/status/503") == 3
    assert bad_request.status_code == 400  # a client error is the answer, never retried
    assert backend.hits("GET", "/orders/status/400") == 1


async def test_service_breaker_opens_after_repeated_bad_gateways(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway(
        {"order-service": backend.address},
        instance_breaker_failures=100,
        service_breaker_failures=3,
        breaker_recovery_seconds=30,
    )
    headers = bearer(issuer.issue("7", []))
    async with gateway.client() as client:
        answers = [
            await client.post("/api/orders/status/502", headers=headers, json={}) for _ in range(5)
        ]
    assert [r.status_code for r in answers] == [502, 502, 502, 503, 503]
    assert backend.hits("POST", "/orders/status/502") == 3
    assert answers[-1].json()["detail"] == "order-service is failing; its circuit is open"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 30


async def test_metrics_count_requests_by_route_and_upstream_latency(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        await client.get("/api/orders/1", headers=bearer(issuer.issue("7", [])))
        await client.get("/api/orders/cached/m")
        await client.get("/api/orders/cached/m")
        metrics = (await client.get("/metrics")).text
    assert (
        'shop_requests_total{code="200",operation="GET /api/orders/**",outcome="ok",'
        'protocol="http"}' in metrics
    )
    assert (
        'gateway_upstream_duration_seconds_count{service="order-service",status="200"}' in metrics
    )
    assert 'gateway_cache_lookups_total{result="hit",route="cached"}' in metrics
    assert "gateway_rate_limit_rejections_total" in metrics
