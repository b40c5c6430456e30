"""Prometheus metrics by route template, /metrics, /health and /ready."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from prometheus_client import REGISTRY
from shop_common.metrics import outcome
from shop_common.web import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from conftest import Harness


def requests_count(route: str, status: str, method: str = "GET") -> float:
    labels = {"protocol": "http", "operation": f"{method} {route}", "code": status}
    value = REGISTRY.get_sample_value(
        "shop_requests_total", {**labels, "outcome": outcome("http", status)}
    )
    return value or 0.0


def latency_count(route: str, method: str = "GET") -> float:
    value = REGISTRY.get_sample_value(
        "shop_request_duration_seconds_count",
        {"protocol": "http", "operation": f"{method} {route}"},
    )
    return value or 0.0


async def test_requests_are_counted_by_route_template_not_raw_path(
    client: httpx.AsyncClient,
) -> None:
    before_ok = requests_count("/items/{item_id}", "200")
    before_missing = requests_count("/items/{item_id}", "404")
    before_latency = latency_count("/items/{item_id}")
    for item_id in (1, 2, 3, 0):
        await client.get(f"/items/{item_id}")
    assert requests_count("/items/{item_id}", "200") - before_ok == 3
    assert requests_count("/items/{item_id}", "404") - before_missing == 1
    assert latency_count("/items/{item_id}") - before_latency == 4
    assert requests_count("/items/1", "200") == 0.0  # never the raw path


async def test_unmatched_paths_share_one_label(client: httpx.AsyncClient) -> None:
    before = requests_count("<unmatched>", "404")
    await client.get("/random/a")
    await client.get("/random/b")
    assert requests_count("<unmatched>", "404") - before == 2


async def test_unhandled_exception_is_counted_as_500(client: httpx.AsyncClient) -> None:
    before = requests_count("/boom", "500")
    await client.get("/boom")
    assert requests_count("/boom", "500") - before == 1


async def test_metrics_endpoint_serves_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/items/9")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'shop_requests_total{code="200",operation="GET /items/{item_id}",outcome="ok",'
        'protocol="http"}' in response.text
    )
    assert "shop_request_duration_seconds_bucket" in response.text
    assert 'shop_requests_in_flight{protocol="http"}' in response.text


async def test_health_is_200_even_when_dependencies_fail(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    harness.ready["database"] = "failing"
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_is_200_when_every_check_passes(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_ready_is_503_naming_failing_raising_and_hanging_checks(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    harness.ready["database"] = "failing"
    harness.ready["broker"] = "hang"
    response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["checks"] == {"database": "failing", "broker": "timeout"}
    assert body["detail"] == "not ready: broker, database"

    harness.ready["broker"] = "raise"
    body = (await client.get("/ready")).json()
    assert body["checks"]["broker"] == "error"

    harness.ready.update(database="ok", broker="ok")
    assert (await client.get("/ready")).status_code == 200
