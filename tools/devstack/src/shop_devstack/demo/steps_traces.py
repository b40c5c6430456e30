"""The demo's trace step: one order, from the client's POST to PAID, as a waterfall of spans that
the services exported to the demo's own OTLP receiver; in words, when they export elsewhere."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from shop_devstack.client import check
from shop_devstack.demo.context import BOOK, DemoContext
from shop_devstack.demo.narration import StepFailed
from shop_devstack.running import RunningSystem
from shop_devstack.traces import OtlpReceiver, ReceivedSpan, render_waterfall
from shop_devstack.traces.background import OTLP_HTTP_PORT

Observe = Callable[[str], None]

TRACE_WITHIN_S = 30.0  # the services export in batches; the last one follows PAID within this
QUIET_S = 1.5  # the trace is complete once no span of it arrived for this long
WHAT_IT_SHOWS = (
    "it shows one order as a tree of spans: the gateway's POST /api/orders, the order service's "
    "GetUser call to a user-service replica, the outbox relay's publish to RabbitMQ, the payment "
    "service's charge and its own publish, and the order service's consume that marks the order "
    "PAID — each with its duration and a bar showing when it ran"
)


def how_to_see_it(system: RunningSystem) -> list[str]:
    """Why this system's traces do not reach the demo, and how to start it so that they do."""
    url = system.state.get("traces_url")
    if system.compose is not None:
        why = (
            "this is the compose stack: its services send their traces where its "
            "OTEL_EXPORTER_OTLP_ENDPOINT points (the observability profile's collector), not here"
        )
    elif url:
        why = f"this system sends its traces to {url}, not to the demo: look there (Jaeger, say)"
    else:
        why = (
            "this system was started without tracing (no OTEL_EXPORTER_OTLP_ENDPOINT for `make up`)"
        )
    return [
        why,
        "to see it here: `make down`, then `make demo` (the demo then starts the system sending its "
        "traces to a receiver of its own); or start it with "
        f"`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{OTLP_HTTP_PORT} make up` and run `make demo`"
        f" (the demo listens on {OTLP_HTTP_PORT}, OTLP's usual port)",
        WHAT_IT_SHOWS,
    ]


def _has(spans: list[ReceivedSpan], service: str) -> bool:
    return any(service in span.service for span in spans)


def complete(spans: list[ReceivedSpan]) -> bool:
    """The gateway, the payment service, and an order-service span after the payment service's
    first (the consume that makes the order PAID) are in."""
    paid_from = [s.start_ns for s in spans if "payment" in s.service]
    if not _has(spans, "gateway") or not paid_from:
        return False
    return any("order" in s.service and s.start_ns > min(paid_from) for s in spans)


def find_trace(spans: list[ReceivedSpan], trace_id: str, sent_ns: int) -> str | None:
    """Our trace id (the gateway continued our traceparent), else the trace of the gateway's first
    POST .../orders server span after we sent ours (a gateway that starts its own traces)."""
    if any(span.trace_id == trace_id for span in spans):
        return trace_id
    posts = [
        s
        for s in spans
        if "gateway" in s.service
        and s.kind == "server"
        and "POST" in s.name
        and "orders" in s.name
        and s.start_ns >= sent_ns
    ]
    return min(posts, key=lambda s: s.start_ns).trace_id if posts else None


async def settled_trace(receiver: OtlpReceiver, trace_id: str, sent_ns: int) -> list[ReceivedSpan]:
    """The order's whole trace: complete, then quiet for QUIET_S; StepFailed naming what came."""
    found: list[str] = []

    def whole(spans: list[ReceivedSpan]) -> bool:
        wanted = find_trace(spans, trace_id, sent_ns)
        found[:] = [wanted] if wanted else []
        return wanted is not None and complete([s for s in spans if s.trace_id == wanted])

    try:
        await receiver.wait_for(whole, timeout=TRACE_WITHIN_S)
    except TimeoutError as exc:
        raise StepFailed(
            f"the order's trace did not arrive complete: {exc} (the services were told to send "
            f"their traces to {receiver.endpoint}/v1/traces)"
        ) from exc
    spans = receiver.trace(found[0])
    deadline = time.monotonic() + 10 * QUIET_S
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET_S)
        now = receiver.trace(found[0])
        if len(now) == len(spans):
            break
        spans = now
    return spans


async def order_trace(ctx: DemoContext, observe: Observe) -> None:
    """Place one order with a traceparent; print its trace as a waterfall once it is PAID."""
    receiver = ctx.traces
    if receiver is None:
        for line in how_to_see_it(ctx.system):
            observe(line)
        return
    _, token = await ctx.user()
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    sent_ns = time.time_ns()
    response = await ctx.client.place_order(token, [BOOK], headers={"traceparent": traceparent})
    order = check(response, 201, 202).json()
    observe(f"placed order {order['id'][:8]}…, sending the header traceparent: {traceparent}")
    await ctx.wait_for_status(token, order["id"], "PAID")
    observe("it is PAID; the services send their spans in batches: waiting for the whole trace")
    spans = await settled_trace(receiver, trace_id, sent_ns)
    for line in render_waterfall(spans):
        observe(line)
    services = list(dict.fromkeys(s.service for s in sorted(spans, key=lambda s: s.start_ns)))
    observe(f"one trace id, {len(spans)} spans, {len(services)} services: {' → '.join(services)}")
    observe(
        "each line is one span, a piece of work, indented under the span that caused it; the bar "
        "shows when it ran within the whole order; '↳ linked from' marks work that a message "
        "started, pointing at the span that published it"
    )
    if spans[0].trace_id == trace_id:
        observe("the gateway continued the client's traceparent: the trace id is the one we sent")
    else:
        observe(
            "the gateway started the trace itself (it does not continue a client's traceparent)"
        )
