"""/health, /ready (database and broker, failing and recovering), /metrics, OpenAPI examples."""

from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import asyncpg
import pytest
from shop_common.messaging import PaymentSucceeded, Publisher, new_event
from shop_testing.wait import eventually

from .conftest import ITEMS, RunningApp, Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


async def test_health_ready_and_metrics(running: RunningApp, shopper: Shopper) -> None:
    assert (await running.http.get("/health")).json() == {"status": "ok"}
    ready = await running.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}

    _, token = await shopper()
    order = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    payment = PaymentSucceeded(
        payment_id=uuid.uuid4(),
        order_id=uuid.UUID(order.json()["id"]),
        amount=Decimal("20.50"),
        currency="EUR",
    )
    publisher = Publisher(running.runtime.broker)
    await publisher.publish("payments", new_event("payment.succeeded", payment))
    await publisher.close()

    async def consumed_and_sampled() -> bool:
        text = (await running.http.get("/metrics")).text
        return (
            'shop_messages_consumed_total{outcome="ack",queue="order.payment-results"}' in text
            and 'shop_queue_depth{queue="order.payment-results.dlq"} 0.0' in text
        )

    await eventually(consumed_and_sampled, what="consumer and DLQ metrics")
    text = (await running.http.get("/metrics")).text
    for needle in (
        'shop_requests_total{code="201",operation="POST /orders",outcome="ok",protocol="http"}',
        'shop_queue_depth{queue="order.user-changes.dlq"}',
        "shop_outbox_lag_seconds",
        'circuit_breaker_state{name="user-service",state="closed"} 1.0',
    ):
        assert needle in text, needle


async def test_ready_fails_while_the_database_refuses_and_recovers(
    running: RunningApp, shopper: Shopper, postgres_url: str
) -> None:
    _, token = await shopper()
    database = urlsplit(running.runtime.settings.database_url).path.lstrip("/")
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
        ready = await running.http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"
        assert ready.json()["checks"]["broker"] == "ok"
        for _ in range(3):
            placed = await running.http.post(
                "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
            )
            assert placed.status_code == 503, placed.text
            assert placed.headers["retry-after"]
            assert placed.headers["content-type"].startswith("application/problem+json")
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()

    async def ready_again() -> bool:
        return (await running.http.get("/ready")).status_code == 200

    await eventually(ready_again, what="ready after the database came back")
    placed = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    assert placed.status_code == 201


async def test_openapi_documents_examples_and_problem_responses(running: RunningApp) -> None:
    document = (await running.http.get("/openapi.json")).json()
    create = document["paths"]["/orders"]["post"]
    assert {"201", "401", "422", "503"} <= set(create["responses"])
    assert document["components"]["schemas"]["OrderCreate"]["examples"]
    assert document["components"]["schemas"]["OrderPublic"]["examples"]
    cancel = document["paths"]["/orders/{order_id}/cancel"]["post"]
    assert "409" in cancel["responses"]
