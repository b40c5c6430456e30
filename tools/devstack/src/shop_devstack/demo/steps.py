"""The demo's steps, in order (issue 6, section 3)."""

from __future__ import annotations

from shop_devstack.demo import (
    steps_catalog,
    steps_messaging,
    steps_orders,
    steps_traces,
    steps_users,
)
from shop_devstack.demo.context import DemoContext
from shop_devstack.demo.narration import Step

STEPS: list[Step[DemoContext]] = [
    Step(
        "Log in as an admin and as a user",
        "gateway auth: RS256 JWT with kid, verified again by every service",
        "POST /auth/token with a password (checked by the user service over gRPC) returns a signed token.",
        steps_users.login,
        essential=True,
    ),
    Step(
        "Create users",
        "REST→gRPC transcoding",
        "The admin POSTs JSON to the gateway, which calls the user service's CreateUser.",
        steps_users.create_users,
    ),
    Step(
        "Stream the user list",
        "gRPC server streaming, keyset pagination",
        "ListUsers streams pages from PostgreSQL; the gateway relays each user as one NDJSON line.",
        steps_users.stream_users,
    ),
    Step(
        "Browse the catalog and order from it",
        "public cached reads; prices decided by the shop, not the client",
        "Anyone can list products and prices; an order names skus and quantities only, and the "
        "order service prices each line at the catalog's current price (cached, refreshed ahead).",
        steps_catalog.browse_catalog,
    ),
    Step(
        "Place orders and watch them become PAID",
        "a three-party saga over RabbitMQ topic exchanges, outbox, idempotent consumers",
        "order.created leaves through the order service's outbox; the catalog reserves the stock in "
        "one statement (stock.reserved); the payment service charges once and answers; the order "
        "becomes PAID and the catalog keeps the stock for good.",
        steps_orders.orders_become_paid,
    ),
    Step(
        "Out of stock: the order is rejected",
        "saga: a participant says no, nothing to compensate",
        "The catalog cannot hold a line, takes nothing and answers stock.rejected; the order becomes "
        "REJECTED and no charge is ever asked for.",
        steps_catalog.out_of_stock,
    ),
    Step(
        "A price change takes effect on the next order",
        "cache invalidation by event (product.price_changed), L1 + L2 price cache",
        "An admin changes a price; the event evicts the cached price on every order instance, so the "
        "next order pays the new price while earlier orders keep theirs.",
        steps_catalog.price_change,
    ),
    Step(
        "Cancel a paid order and watch the refund",
        "saga compensation, message priority",
        "order.cancelled makes the payment service refund (refunds jump the queue) and the catalog "
        "put the stock back; the order becomes REFUNDED.",
        steps_orders.cancel_and_refund,
    ),
    Step(
        "Subscribe to user updates over SSE",
        "gRPC server streaming → Server-Sent Events, LISTEN/NOTIFY fan-out",
        "A client keeps an SSE stream open; another call changes the user; the event arrives on the stream.",
        steps_users.sse_update,
    ),
    Step(
        "Response cache HIT, then eviction by an event",
        "gateway response cache, event-driven invalidation",
        "A repeated GET is served from Redis; user.updated on the users exchange evicts that user's entries.",
        steps_users.cache_hit_and_eviction,
    ),
    Step(
        "Trip the rate limit",
        "rate limiting in Redis (one atomic Lua script)",
        "One caller sends a burst; past its limit the gateway answers 429 with Retry-After.",
        steps_users.rate_limit,
    ),
    Step(
        "Payment provider down, then back",
        "retry through delay queues, circuit breaker, exactly-once charge",
        "Charges fail and are retried later instead of lost; when the provider returns, orders drain to PAID.",
        steps_orders.provider_outage,
    ),
    Step(
        "Stop one user-service instance",
        "client-side load balancing (gRPC round_robin), circuit breaker",
        "With one instance down, every call goes to the other; no call fails, so the breakers stay closed.",
        steps_orders.user_instance_down,
    ),
    Step(
        "A poison message, the DLQ and a replay",
        "dead-letter queue, bounded retries, replay tool",
        "A message nobody can decode is parked with its error instead of looping; the DLQ tool replays it.",
        steps_messaging.poison_message,
    ),
    Step(
        "One order's trace as a waterfall",
        "distributed tracing: OpenTelemetry, W3C traceparent through HTTP, gRPC, the outbox, RabbitMQ",
        "Every service reports its share of the order's work as spans under one trace id; the demo "
        "collects them over OTLP and draws them on one time axis.",
        steps_traces.order_trace,
    ),
]
