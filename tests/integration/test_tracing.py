"""One order is one trace: a system started with OTEL_EXPORTER_OTLP_ENDPOINT at an OTLP receiver
in the test, an order placed through the gateway, and the spans the receiver got.

The trace runs gateway → order (POST) → user (GetUser on a replica) → the outbox row → the
relay's publish (a child of the request that wrote the row) → RabbitMQ → payment's consume →
payment.charge → payment's outbox publish → order's consume of payment.succeeded (PAID). A
retry (the provider down for a moment) and a DLQ parking (a poison message) are span events.
The gateway's server span is named after its route ("POST /api/orders/**"), no span is the ASGI
middleware's internal send/receive, and no trace is started by background work: every root is
a client's request through the gateway or a consumed message.

Its own system (the session's runs without tracing), started by the launcher like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence

import aio_pika
import pytest
from shop_devstack.accounts import admin_token, login, new_user
from shop_devstack.client import ShopClient
from shop_devstack.demo.context import BOOK, DemoContext
from shop_devstack.layout import REPO_ROOT, Ports, StackConfig
from shop_devstack.running import RunningSystem, free_port_offset, launch
from shop_devstack.traces import OtlpReceiver, ReceivedSpan
from shop_testing.isolation import VhostAdmin

pytestmark = [pytest.mark.infra, pytest.mark.launcher, pytest.mark.timeout(420)]

Spans = Sequence[ReceivedSpan]
# The gateway's route for orders (routes.yaml), as its RED metrics label it.
ORDERS_ROUTE_SPAN = "POST /api/orders/**"
# How long the last spans of every service take to arrive: a few of the BSP's 0.2 s batches.
SETTLE_SECONDS = 1.5


def in_trace(spans: Spans, trace_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == trace_id]


def one(spans: Spans, what: str, match: Callable[[ReceivedSpan], bool]) -> ReceivedSpan:
    found = [s for s in spans if match(s)]
    assert found, f"no span for {what} among {sorted({(s.service, s.name) for s in spans})}"
    return min(found, key=lambda s: s.start_ns)


def by_id(spans: Spans) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in spans}


def ancestors(span: ReceivedSpan, spans: Spans) -> list[ReceivedSpan]:
    index, chain = by_id(spans), []
    while span.parent_span_id is not None and span.parent_span_id in index:
        span = index[span.parent_span_id]
        chain.append(span)
    return chain


def descends(child: ReceivedSpan, ancestor: ReceivedSpan, spans: Spans) -> bool:
    return any(s.span_id == ancestor.span_id for s in ancestors(child, spans))


def is_publish(service: str, exchange: str) -> Callable[[ReceivedSpan], bool]:
    return lambda s: s.service == service and s.kind == "producer" and exchange in s.name


def is_consume(service: str) -> Callable[[ReceivedSpan], bool]:
    return lambda s: s.service == service and s.kind == "consumer"


def has_event(name: str) -> Callable[[ReceivedSpan], bool]:
    return lambda s: any(event == name for event, _ in s.events)


async def start_traced_system(
    postgres_url: str, redis_url: str, vhosts: VhostAdmin
) -> tuple[RunningSystem, Callable[[], None]]:
    prefix = f"e2e_trace_{uuid.uuid4().hex[:6]}_"
    vhost = prefix.rstrip("_")
    amqp = vhosts.create(vhost)
    base = Ports()
    offset = free_port_offset(base.all())
    args = [
        f"--port-offset={offset}",
        f"--database-prefix={prefix}",
        f"--postgres-url={postgres_url}",
        f"--redis-url={redis_url.rsplit('/', 1)[0]}/12",
        f"--amqp-url={amqp}",
    ]
    run_dir = REPO_ROOT / "run" / "e2e" / vhost
    system = await asyncio.to_thread(launch, run_dir, args)

    def stop() -> None:
        from shop_devstack.databases import drop_databases

        system.stop()
        config = StackConfig(postgres_admin_url=postgres_url, database_prefix=prefix)
        asyncio.run(drop_databases(config, ["users", "orders", "payments", "catalog"]))
        vhosts.delete(vhost)

    return system, stop


async def test_one_order_is_one_trace_from_the_gateway_to_paid(
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    redis_url: str,
    request: pytest.FixtureRequest,
) -> None:
    vhosts: VhostAdmin = request.getfixturevalue("_vhost_admin")
    async with OtlpReceiver(port=0) as receiver:
        # The services inherit the launcher's environment: tracing on, exported within 0.2 s.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.0")
        system, stop = await start_traced_system(postgres_url, redis_url, vhosts)
        client = ShopClient(system.gateway_url)
        try:
            ctx = DemoContext(client, system)
            admin = await admin_token(client, system.run_dir)
            account = await new_user(client, admin, "Tracy Tracer")
            token = await login(client, account.email, account.password)
            order = await ctx.place_order(token, [BOOK])
            await ctx.wait_for_status(token, order["id"], "PAID")
            await check_the_order_trace(receiver, order["id"])
            await check_a_retry_event(ctx, receiver, admin, token)
            await check_a_dlq_parking_event(receiver, str(system.state["amqp_url"]))
            await check_no_background_roots(receiver)
        finally:
            await client.close()
            await asyncio.to_thread(stop)


async def check_the_order_trace(receiver: OtlpReceiver, order_id: str) -> None:
    def gateway_post(s: ReceivedSpan) -> bool:
        return s.service == "gateway" and s.kind == "server" and s.name == ORDERS_ROUTE_SPAN

    def paid_trace(spans: Spans) -> list[ReceivedSpan]:
        """The trace of a gateway POST that reached the order's consume of a payment result."""
        for post in (s for s in spans if gateway_post(s)):
            trace = in_trace(spans, post.trace_id)
            paid = any(
                is_consume("order-service")(t) and t.name.startswith("payments") for t in trace
            )
            # Each service exports on its own schedule: wait for every hop's spans.
            hops = (
                is_publish("catalog-service", "catalog"),
                is_consume("payment-service"),
                is_publish("payment-service", "payments"),
            )
            if paid and all(any(hop(t) for t in trace) for hop in hops):
                return trace
        return []

    spans = await receiver.wait_for(lambda spans: bool(paid_trace(spans)), timeout=60)
    trace = paid_trace(spans)
    post = one(trace, "the gateway's POST /api/orders", gateway_post)
    assert post.parent_span_id is None  # the client sent no trace: the gateway starts it
    assert post.attributes.get("http.route") == "/api/orders/**"  # the label its metrics use
    internal = sorted({s.name for s in trace if s.name.endswith(("http send", "http receive"))})
    assert not internal, f"the ASGI middleware's internal spans were exported: {internal}"

    order_post = one(
        trace,
        "the order service's POST",
        lambda s: s.service == "order-service" and s.kind == "server" and "POST" in s.name,
    )
    assert descends(order_post, post, trace)  # through the gateway's aiohttp proxy
    get_user = one(
        trace,
        "GetUser on a user replica",
        lambda s: s.service == "user-service" and s.kind == "server" and "GetUser" in s.name,
    )
    assert descends(get_user, order_post, trace)  # the order service's gRPC client

    order_publish = one(trace, "the order relay's publish", is_publish("order-service", "orders"))
    assert descends(order_publish, order_post, trace)  # restored from the outbox row
    # The saga's stock hop: the catalog consumes order.created, reserves, and its relay
    # publishes stock.reserved, which the payment service consumes.
    catalog_consume = one(
        trace,
        "the catalog's consume of order.created",
        lambda t: is_consume("catalog-service")(t) and t.parent_span_id == order_publish.span_id,
    )
    catalog_publish = one(
        trace, "the catalog relay's publish", is_publish("catalog-service", "catalog")
    )
    assert descends(catalog_publish, catalog_consume, trace)  # restored from the outbox row
    payment_consume = one(trace, "payment's consume", is_consume("payment-service"))
    assert payment_consume.parent_span_id == catalog_publish.span_id  # through the AMQP headers
    charge = one(trace, "payment.charge", lambda s: s.name == "payment.charge")
    assert descends(charge, payment_consume, trace)
    payment_publish = one(trace, "payment's publish", is_publish("payment-service", "payments"))
    assert descends(payment_publish, payment_consume, trace)
    order_consume = one(
        trace,
        "order's consume of payment.succeeded",
        lambda s: is_consume("order-service")(s) and s.name.startswith("payments"),
    )
    assert order_consume.parent_span_id == payment_publish.span_id
    assert order_consume.start_ns >= payment_publish.start_ns >= charge.start_ns


async def check_a_retry_event(
    ctx: DemoContext, receiver: OtlpReceiver, admin: str, token: str
) -> None:
    """The provider down: payment's consume fails and is retried (a message.retry event);
    then it is up again and the order is paid, in the same trace."""
    await ctx.client.set_provider(admin, down=True)
    try:
        order = await ctx.place_order(token, [BOOK])
        spans = await receiver.wait_for(
            lambda spans: any(has_event("message.retry")(s) for s in spans), timeout=60
        )
    finally:
        await ctx.client.set_provider(admin, down=False)
    await ctx.wait_for_status(token, order["id"], "PAID", within=60)
    retried = one(spans, "a consume with a retry event", has_event("message.retry"))
    assert retried.service == "payment-service"
    # The retry is part of the order's trace. Each service exports on its own schedule: the
    # gateway's span of that POST may reach the receiver after the payment's retry event.
    await receiver.wait_for(
        lambda spans: any(s.service == "gateway" for s in in_trace(spans, retried.trace_id)),
        timeout=30,
    )


async def check_a_dlq_parking_event(receiver: OtlpReceiver, amqp_url: str) -> None:
    """An undecodable message published under a trace of the test's own: its consume span
    (a child of that context) carries message.dead_lettered."""
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange("catalog")  # stock.reserved: payment's queue
        await exchange.publish(
            aio_pika.Message(
                b"{not an event",
                message_id=uuid.uuid4().hex,
                content_type="application/json",
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            ),
            routing_key="stock.reserved",
        )
    finally:
        await connection.close()
    spans = await receiver.wait_for(
        lambda spans: any(
            s.trace_id == trace_id and has_event("message.dead_lettered")(s) for s in spans
        ),
        timeout=60,
    )
    parked = one(in_trace(spans, trace_id), "the parking", has_event("message.dead_lettered"))
    assert parked.service == "payment-service"
    assert parked.parent_span_id == parent_id


def is_background_root(span: ReceivedSpan) -> bool:
    """A root that is neither a client's request through the gateway nor a consumed message."""
    if span.parent_span_id is not None:
        return False
    client_request = span.service == "gateway" and span.kind == "server"
    return not (client_request or span.kind == "consumer")


async def check_no_background_roots(receiver: OtlpReceiver) -> None:
    """The system ran for the whole test (health pings, relay polls, monitor samples, probes of
    the launcher, sweeps...): no trace was started by any of that. The last batches of every
    service are given a few export intervals to arrive (a background root among them ends the
    wait early and fails)."""
    with contextlib.suppress(TimeoutError):
        await receiver.wait_for(
            lambda spans: any(is_background_root(s) for s in spans), timeout=SETTLE_SECONDS
        )
    spans = receiver.spans()
    roots = [s for s in spans if s.parent_span_id is None]
    assert any(s.name == ORDERS_ROUTE_SPAN for s in roots)
    background = sorted({(s.service, s.kind, s.name) for s in roots if is_background_root(s)})
    assert not background, f"background work started traces: {background}"
