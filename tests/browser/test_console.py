"""The system console in a real browser, as an admin: the system live (instances, breakers,
caches, queues, outbox, sagas), the payment provider switched to failing while an order is
retried, then back, and the order paid; a dead letter browsed and replayed. Every console
endpoint refuses the anonymous (401) and a shopper (403) through the gateway too."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aio_pika
import httpx
import pytest
from playwright.sync_api import Page, expect
from shop_common.messaging.events import EventEnvelope
from shop_devstack.layout import ADMIN_EMAIL, ADMIN_PASSWORD
from shop_devstack.running import RunningSystem

from tests.browser.conftest import Tab

pytestmark = pytest.mark.infra
QUEUE = "payment.order-events"
DLQ_WORK_QUEUE = "gateway.catalog-changes"


def _until(check: Callable[[], bool], what: str, within: float = 90.0) -> None:
    """Poll check (a quarter-second apart) until it holds, or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        time.sleep(0.25)


def _token(base_url: str, email: str, password: str) -> str:
    answer = httpx.post(
        base_url + "/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _shopper(base_url: str) -> str:
    """A new shopper's token; the account is made by the admin (POST /api/users), so these
    tests spend none of the sign-up route's per-address budget."""
    email = f"console.shopper.{uuid.uuid4().hex[:8]}@shop.example"
    password = "a long enough password"
    admin = {"Authorization": f"Bearer {_token(base_url, ADMIN_EMAIL, ADMIN_PASSWORD)}"}
    body = {"email": email, "name": "Console Shopper", "password": password, "roles": ["user"]}
    created = httpx.post(base_url + "/api/users", json=body, headers=admin, timeout=60)
    assert created.status_code == 201, created.text
    return _token(base_url, email, password)


def _sign_in(tab: Tab) -> Page:
    page = tab.open("/console")
    page.locator("#console-email").fill(ADMIN_EMAIL)
    page.locator("#console-password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#instances .card").first).to_be_visible(timeout=30_000)
    return page


def test_console_endpoints_refuse_the_anonymous_and_shoppers(system: RunningSystem) -> None:
    shopper = {"Authorization": f"Bearer {_shopper(system.gateway_url)}"}
    admin = {"Authorization": f"Bearer {_token(system.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD)}"}
    calls = [
        ("GET", "/web/console/snapshot", None),
        ("GET", "/web/console/events", None),
        ("GET", f"/web/console/dead-letters/{QUEUE}", None),
        ("POST", f"/web/console/dead-letters/{QUEUE}/replay", {"ids": []}),
    ]
    with httpx.Client(base_url=system.gateway_url, timeout=30) as http:
        for method, path, body in calls:
            assert http.request(method, path, json=body).status_code == 401, path
            refused = http.request(method, path, json=body, headers=shopper)
            assert refused.status_code == 403, path
            assert refused.headers["content-type"] == "application/problem+json"
        snap = http.get("/web/console/snapshot", headers=admin)
        assert snap.status_code == 200
        assert {s["service"] for s in snap.json()["services"]} >= {"gateway", "order-service"}


def test_an_admin_fails_the_payment_provider_and_watches_retries_and_recovery(
    tab: Tab, system: RunningSystem
) -> None:
    shopper = _shopper(system.gateway_url)
    page = _sign_in(tab)
    expect(page.locator('#instances [data-service="payment-service"]')).to_contain_text("1/1 up")
    expect(page.locator("#breakers")).to_contain_text("payment-provider")
    tab.shot("console")

    form = page.locator("#provider-form")
    expect(form).to_be_visible()
    page.get_by_label("Provider down (every charge fails)").check()
    form.get_by_role("button", name="Apply").click()
    expect(page.locator("#notice")).to_have_text("The payment provider is now failing.")
    assert tab.failed == [], tab.failed

    with httpx.Client(base_url=system.gateway_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {shopper}", "Idempotency-Key": uuid.uuid4().hex}
        body = {"items": [{"sku": "TOYS-003", "quantity": 1}], "currency": "EUR"}
        placed = http.post("/api/orders", json=body, headers=auth)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]

        # The charge fails and goes round the retry tiers: the console shows the retries.
        row = page.locator("#queues tr", has=page.locator(f'th:text-is("{QUEUE}")'))
        expect(row).to_contain_text("retry", timeout=60_000)
        tab.shot("console-provider-failing")

        page.get_by_label("Provider down (every charge fails)").uncheck()
        page.locator("#provider-form").get_by_role("button", name="Apply").click()
        expect(page.locator("#notice")).to_have_text("The payment provider is switched back.")

        def paid() -> bool:
            answer = http.get(
                f"/api/orders/{order_id}", headers={"Authorization": auth["Authorization"]}
            )
            return answer.status_code == 200 and answer.json()["status"] == "PAID"

        _until(paid, f"order {order_id} paid once the provider is back", within=120)
    paid_row = page.locator("#sagas tr", has=page.locator('th:text-is("paid")'))
    expect(paid_row).to_be_visible(timeout=30_000)
    expect(page.locator("#provider")).to_contain_text("closed", timeout=30_000)
    tab.shot("console-recovered")
    assert tab.errors == []


def _in_thread(coroutine: Any) -> Any:
    """Run a coroutine to its end in a thread of its own (Playwright's loop owns this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _dead_letter(amqp_url: str) -> str:
    """A stock.changed that "failed" in gateway.catalog-changes, put straight into its DLQ."""
    envelope = EventEnvelope(
        event_type="stock.changed",
        payload={"sku": "TOYS-003", "available": 99, "delta": 0, "reason": "console replay test"},
    )
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        message = aio_pika.Message(
            envelope.to_json(),
            message_id=str(envelope.event_id),
            type=envelope.event_type,
            content_type="application/json",
            headers={
                "x-original-exchange": "catalog",
                "x-original-routing-key": "stock.changed",
                "x-failed-queue": DLQ_WORK_QUEUE,
                "x-attempts": 5,
                "x-error": "simulated failure",
            },
        )
        await channel.default_exchange.publish(message, routing_key=f"{DLQ_WORK_QUEUE}.dlq")
    finally:
        await connection.close()
    return str(envelope.event_id)


def test_an_admin_browses_a_dead_letter_and_replays_it(tab: Tab, system: RunningSystem) -> None:
    message_id = _in_thread(_dead_letter(system.amqp_url))
    page = _sign_in(tab)
    browse = page.get_by_role("button", name=f"Browse {DLQ_WORK_QUEUE}.dlq")
    expect(browse).to_be_visible(timeout=30_000)
    browse.click()
    letter = page.locator("#dlq tr", has=page.locator(f'th:text-is("{message_id}")'))
    expect(letter).to_contain_text("stock.changed")
    expect(letter).to_contain_text("simulated failure")
    tab.shot("console-dead-letters")

    letter.get_by_role("button", name=f"Replay {message_id}").click()
    expect(page.locator("#notice")).to_have_text(
        f"Replayed 1 message(s) from {DLQ_WORK_QUEUE}.dlq."
    )
    expect(letter).to_have_count(0)  # gone from the DLQ: the gateway consumed it this time
    row = page.locator("#queues tr", has=page.locator(f'th:text-is("{DLQ_WORK_QUEUE}")'))
    expect(row).to_contain_text("ack", timeout=30_000)
    assert tab.errors == []


def test_an_admin_fails_the_catalog_with_a_chaos_switch_then_clears_it(
    tab: Tab, system: RunningSystem
) -> None:
    admin = {"Authorization": f"Bearer {_token(system.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD)}"}

    def product(sku: str) -> int:
        fresh = uuid.uuid4().hex  # its own entry in the gateway's response cache
        url = f"{system.gateway_url}/api/products/{sku}?f={fresh}"
        return httpx.get(url, timeout=30).status_code

    page = _sign_in(tab)
    try:
        form = page.locator("#chaos-form")
        expect(form).to_be_visible()
        page.get_by_label("Service", exact=True).select_option("catalog-service")
        page.get_by_label("Path prefix").fill("/products/TOYS-003")
        page.get_by_label("Error ratio (0 to 1)").fill("1")
        form.get_by_role("button", name="Set rule").click()
        expect(page.locator("#notice")).to_have_text("Chaos rule set on catalog-service.")
        expect(page.locator("#chaos-form")).to_contain_text("/products/TOYS-003")
        tab.shot("console-chaos")

        assert product("TOYS-003") == 503  # every attempt injected: the gateway's retries too
        assert product("TOYS-002") == 200  # another path: untouched
        page.locator("#chaos-form").get_by_role("button", name="Clear service").click()
        expect(page.locator("#notice")).to_have_text("Chaos cleared on catalog-service.")
        assert product("TOYS-003") == 200
        assert tab.errors == []
    finally:  # the next test must not meet this one's fault
        cleared = httpx.delete(
            f"{system.gateway_url}/web/console/chaos/catalog-service", headers=admin, timeout=30
        )
        assert cleared.status_code == 200, cleared.text


def _order_trace_export(trace_id: bytes) -> bytes:
    """An OTLP export of an order's trace: the gateway's POST /api/orders and one child span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns()

    def of(service: str, span: Span) -> ResourceSpans:
        name = KeyValue(key="service.name", value=AnyValue(string_value=service))
        return ResourceSpans(
            resource=Resource(attributes=[name]), scope_spans=[ScopeSpans(spans=[span])]
        )

    root = Span(
        trace_id=trace_id,
        span_id=b"\x01" * 8,
        name="POST /api/orders",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now,
        end_time_unix_nano=now + 40_000_000,
    )
    child = Span(
        trace_id=trace_id,
        span_id=b"\x02" * 8,
        parent_span_id=b"\x01" * 8,
        name="payment.charge",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=now + 10_000_000,
        end_time_unix_nano=now + 30_000_000,
    )
    export = ExportTraceServiceRequest(
        resource_spans=[of("gateway", root), of("payment-service", child)]
    )
    return export.SerializeToString()


@pytest.mark.launcher
def test_the_console_draws_the_last_orders_trace_as_a_waterfall(
    tab: Tab, system: RunningSystem
) -> None:
    """The services of this system export their traces to the session's receiver; an export sent
    to the web service's own OTLP endpoint stands for theirs (make up … OTEL_EXPORTER_OTLP_ENDPOINT)."""
    port = system.state["processes"]["web"]["port"]
    trace_id = uuid.uuid4().bytes
    sent = httpx.post(
        f"http://127.0.0.1:{port}/v1/traces",
        content=_order_trace_export(trace_id),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    page = _sign_in(tab)
    waterfall = page.get_by_role("list", name="Spans of the last order, in tree order")
    expect(waterfall).to_be_visible(timeout=30_000)
    expect(page.locator("#trace")).to_contain_text(trace_id.hex()[:16])
    expect(waterfall.locator("li")).to_have_count(2)
    expect(waterfall.locator("li").nth(1)).to_contain_text("payment-service: payment.charge")
    page.locator("#trace").scroll_into_view_if_needed()
    tab.shot("console-trace", full_page=False)
    assert tab.errors == []
