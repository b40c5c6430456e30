"""The HTTP edge: owner-or-admin reads, the admin-only fault switches, problem+json for bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
import pytest
from shop_common.messaging import new_event

pytestmark = pytest.mark.infra

PROBLEM = "application/problem+json"
Headers = Callable[[int], dict[str, str]]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


async def test_a_payment_is_visible_to_its_owner_and_admins_only(
    payment_app: Any, broker: Any, as_user: Headers, as_admin: dict[str, str]
) -> None:
    order = await broker.stock_reserved("18.00", user_id=21)
    payment_id = (await broker.result(order.order_id, "payment.succeeded")).payload["payment_id"]
    client = payment_app.client

    owner = await client.get(f"/payments/{payment_id}", headers=as_user(21))
    admin = await client.get(f"/payments/{payment_id}", headers=as_admin)
    stranger = await client.get(f"/payments/{payment_id}", headers=as_user(22))
    listed = await client.get(
        "/payments", params={"order_id": str(order.order_id)}, headers=as_user(22)
    )

    assert owner.status_code == admin.status_code == 200
    assert owner.json()["order_id"] == str(order.order_id)
    assert owner.json()["amount"] == "18.0000"
    assert_problem(stranger, 404)  # not 403: another user's payment is not disclosed
    assert listed.json() == {"items": []}
    via_gateway_prefix = await client.get(f"/api/payments/{payment_id}", headers=as_user(21))
    assert via_gateway_prefix.json() == owner.json()


async def test_reads_answer_problems_for_bad_or_missing_input(
    payment_app: Any, as_user: Headers
) -> None:
    client = payment_app.client
    unknown = await client.get(f"/payments/{uuid4()}", headers=as_user(1))
    not_a_uuid = await client.get("/payments/not-a-uuid", headers=as_user(1))
    no_filter = await client.get("/payments", headers=as_user(1))
    bad_filter = await client.get("/payments", params={"order_id": "x"}, headers=as_user(1))
    anonymous = await client.get(f"/payments/{uuid4()}")
    forged = await client.get(f"/payments/{uuid4()}", headers={"Authorization": "Bearer abc"})

    assert_problem(unknown, 404)
    assert assert_problem(not_a_uuid, 422)["errors"][0]["loc"] == ["path", "payment_id"]
    assert assert_problem(no_filter, 422)["errors"][0]["loc"] == ["query", "order_id"]
    assert_problem(bad_filter, 422)
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert_problem(forged, 401)


async def test_the_provider_switches_need_the_admin_role(
    payment_app: Any, as_user: Headers, as_admin: dict[str, str]
) -> None:
    client = payment_app.client
    path = "/payments/admin/provider"

    assert_problem(await client.get(path), 401)
    assert_problem(await client.put(path, json={"down": True}), 401)
    assert_problem(await client.get(path, headers=as_user(5)), 403)
    assert_problem(await client.put(path, json={"down": True}, headers=as_user(5)), 403)
    assert payment_app.provider.faults.down is False

    state = await client.get(path, headers=as_admin)
    assert state.status_code == 200
    assert state.json() | {"charges": 0} == {
        "latency_ms": 0.0,
        "transient_failure_rate": 0.0,
        "decline_above": "500.00",
        "down": False,
        "breaker_state": "closed",
        "charges": 0,
        "unavailable_answers": 0,
    }


BAD_SWITCHES: list[Any] = [
    {"transient_failure_rate": 2},
    {"latency_ms": -1},
    {"decline_above": 1.5},
    {"decline_above": "-3"},
    {"decline_above": "lots"},
    {"down": "yes"},
    {"explode": True},
    [],
]
# Issue 11: coercions that would change the meaning are refused (the model is strict).
COERCED_SWITCHES: list[tuple[dict[str, Any], str, str]] = [
    ({"latency_ms": True}, "latency_ms", "float_type"),
    ({"latency_ms": "50"}, "latency_ms", "float_type"),
    ({"transient_failure_rate": "0.5"}, "transient_failure_rate", "float_type"),
    ({"transient_failure_rate": False}, "transient_failure_rate", "float_type"),
    ({"down": 1}, "down", "bool_type"),
    ({"down": "true"}, "down", "bool_type"),
    ({"decline_above": 100}, "decline_above", "string_type"),
]


async def test_bad_switch_values_are_refused_and_change_nothing(
    payment_app: Any, as_admin: dict[str, str]
) -> None:
    before = payment_app.provider.faults
    for body in BAD_SWITCHES:
        response = await payment_app.client.put(
            "/payments/admin/provider", json=body, headers=as_admin
        )
        assert assert_problem(response, 422)["errors"], body
    assert payment_app.provider.faults == before


async def test_switch_values_are_never_coerced(payment_app: Any, as_admin: dict[str, str]) -> None:
    before = payment_app.provider.faults
    for body, field, error_type in COERCED_SWITCHES:
        response = await payment_app.client.put(
            "/payments/admin/provider", json=body, headers=as_admin
        )
        problem = assert_problem(response, 422)
        assert problem["detail"] == "The request is not valid.", body
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
            (["body", field], error_type)
        ], body
    assert payment_app.provider.faults == before
    # A JSON integer is a number: it is taken as it is.
    ok = await payment_app.client.put(
        "/payments/admin/provider", json={"latency_ms": 7}, headers=as_admin
    )
    assert ok.status_code == 200 and ok.json()["latency_ms"] == 7.0


async def test_a_decline_rule_changed_at_run_time_applies_to_the_next_charge(
    payment_app: Any, broker: Any, as_admin: dict[str, str]
) -> None:
    response = await payment_app.client.put(
        "/payments/admin/provider", json={"decline_above": "100.00"}, headers=as_admin
    )
    assert response.json()["decline_above"] == "100.00"

    order = await broker.stock_reserved("150.00")

    failed = await broker.result(order.order_id, "payment.failed")
    assert "150.00 EUR above the card limit" in failed.payload["reason"]


async def test_oversized_and_non_json_bodies_are_client_errors(
    payment_app: Any, as_admin: dict[str, str]
) -> None:
    client = payment_app.client
    path = "/payments/admin/provider"
    too_big = await client.put(path, content=b'{"x": "' + b"a" * 70_000 + b'"}', headers=as_admin)
    not_json = await client.put(
        path, content=b"down=true", headers={**as_admin, "Content-Type": "application/json"}
    )
    assert_problem(too_big, 413)
    assert_problem(not_json, 422)


async def test_health_ready_and_metrics(payment_app: Any, broker: Any, eventually: Any) -> None:
    client = payment_app.client
    order = await broker.stock_reserved("9.99")
    await broker.result(order.order_id, "payment.succeeded")
    poison = new_event("stock.reserved", order)
    poison.payload["total"] = "not-a-number"
    await broker.publish(poison)

    async def dead_lettered() -> bool:
        depths = await payment_app.running.monitor.sample()
        return depths.get("payment.order-events.dlq") == 1

    await eventually(dead_lettered)

    health = await client.get("/health")
    ready = await client.get("/ready")
    metrics = (await client.get("/metrics")).text

    assert health.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
    assert 'shop_queue_depth{queue="payment.order-events.dlq"} 1.0' in metrics
    assert 'shop_messages_consumed_total{outcome="ack",queue="payment.order-events"}' in metrics
    assert 'outcome="dead_letter",queue="payment.order-events"' in metrics
    assert "shop_outbox_lag_seconds" in metrics
    assert (
        'shop_requests_total{code="200",operation="GET /health",outcome="ok",protocol="http"}'
        in metrics
    )


async def test_reads_answer_503_while_the_database_refuses_and_recover(
    payment_app: Any, postgres_url: str, as_admin: dict[str, str], eventually: Any
) -> None:
    client = payment_app.client
    database = urlsplit(payment_app.settings.database_url).path.lstrip("/")
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"
        for _ in range(3):
            read = await client.get(f"/payments/{uuid4()}", headers=as_admin)
            body = assert_problem(read, 503)
            assert read.headers["retry-after"]
            assert "database" in body["detail"]
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()

    async def ready_again() -> bool:
        return bool((await client.get("/ready")).status_code == 200)

    await eventually(ready_again)
    assert_problem(await client.get(f"/payments/{uuid4()}", headers=as_admin), 404)


async def test_trailing_slashes_are_404_problems_never_redirects(
    payment_app: Any, broker: Any, as_user: Headers, as_admin: dict[str, str]
) -> None:
    """Issue 11: a 307 to the slash-less path would put this process's address in Location."""
    order = await broker.stock_reserved("12.00", user_id=31)
    payment_id = (await broker.result(order.order_id, "payment.succeeded")).payload["payment_id"]
    query = {"order_id": str(order.order_id)}
    for path in ("/payments/", f"/payments/{payment_id}/", "/payments/admin/provider/"):
        for method in ("GET", "POST", "PUT"):
            for headers in (as_user(31), as_admin, {}):
                response = await payment_app.client.request(
                    method, path, params=query, json={"down": True}, headers=headers
                )
                assert_problem(response, 404)
                assert "location" not in response.headers, (method, path)
    assert payment_app.provider.faults.down is False  # the PUT never reached the switches
