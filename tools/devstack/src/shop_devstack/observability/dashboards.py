"""The Grafana dashboards' panels, as code: a system overview and one per service (RED,
breakers, caches, queue depths with retry tiers and DLQs, the outbox, saga outcomes, the
catalog's product cache, view counters and reservations).
shop_devstack.observability.grafana renders them as the JSON files Grafana provisions. The module
is long because each panel's PromQL is spelled out whole, to be read beside the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

RATE = "[$__rate_interval]"
# Long-lived streams last as long as their client: not a latency (the alert leaves them out too).
STREAMS = 'operation!~".*(SubscribeToUpdates|updates).*"'
SERVICES = {  # Prometheus job -> dashboard title
    "gateway": "Gateway",
    "order-service": "Order service",
    "payment-service": "Payment service",
    "user-service": "User service",
    "catalog-service": "Catalog service",
}


@dataclass(frozen=True)
class Panel:
    """One time-series panel: a title, its queries (legend, PromQL) and a unit."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    description: str = ""


@dataclass(frozen=True)
class Board:
    """One dashboard: its uid, title and panels."""

    uid: str
    title: str
    panels: list[Panel]


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, parenthesised."""
    return f"({numerator})\n/\n({denominator})"


def red_panels(job: str) -> list[Panel]:
    """Rate, errors and duration of one service (HTTP and gRPC alike)."""
    sel = f'job="{job}"'
    total = f"sum(rate(shop_requests_total{{{sel}}}{RATE}))"
    buckets = f"rate(shop_request_duration_seconds_bucket{{{sel}, {STREAMS}}}{RATE})"
    return [
        Panel(
            "Requests per second by operation",
            (
                (
                    "{{operation}} ({{protocol}})",
                    f"sum by (operation, protocol) (rate(shop_requests_total{{{sel}}}{RATE}))",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Error ratio",
            tuple(
                (
                    outcome,
                    ratio(
                        f'sum(rate(shop_requests_total{{{sel}, outcome="{outcome}"}}{RATE}))', total
                    ),
                )
                for outcome in ("server_error", "client_error")
            ),
            "percentunit",
            "server_error is what HighErrorRatio alerts on (above 5%); client errors are the caller's.",
        ),
        Panel(
            "Latency p50 / p99 (streams excluded)",
            tuple(
                (f"p{int(q * 100)}", f"histogram_quantile({q}, sum by (le) ({buckets}))")
                for q in (0.5, 0.99)
            ),
            "s",
        ),
        Panel(
            "p99 latency by operation",
            (("{{operation}}", f"histogram_quantile(0.99, sum by (le, operation) ({buckets}))"),),
            "s",
        ),
        Panel(
            "Requests in flight",
            (("{{protocol}}", f"sum by (protocol) (shop_requests_in_flight{{{sel}}})"),),
        ),
    ]


def resilience_panels(job: str) -> list[Panel]:
    """Circuit breakers and caches of one service."""
    sel = f'job="{job}"'
    hits = f"sum by (cache, level) (rate(cache_hits_total{{{sel}}}{RATE}))"
    misses = f"sum by (cache, level) (rate(cache_misses_total{{{sel}}}{RATE}))"
    return [
        Panel(
            "Circuit breakers open (1 = open)",
            (("{{name}}", f'max by (name) (circuit_breaker_state{{{sel}, state="open"}})'),),
        ),
        Panel(
            "Breaker calls and rejections per second",
            (
                (
                    "{{name}} {{outcome}}",
                    f"sum by (name, outcome) (rate(circuit_breaker_calls_total{{{sel}}}{RATE}))",
                ),
                (
                    "{{name}} rejected",
                    f"sum by (name) (rate(circuit_breaker_rejections_total{{{sel}}}{RATE}))",
                ),
            ),
            "ops",
        ),
        Panel(
            "Cache hit ratio by cache and level",
            (("{{cache}} {{level}}", ratio(hits, f"{hits} + {misses}")),),
            "percentunit",
        ),
    ]


def messaging_panels(job: str) -> list[Panel]:
    """Queue depths (work, retry tiers, DLQs), consumption and the outbox of one service."""
    sel = f'job="{job}"'
    depth = "max by (queue) (shop_queue_depth{{{sel}, queue{match}}})"
    return [
        Panel(
            "Work queues: messages ready",
            (("{{queue}}", depth.format(sel=sel, match='!~".*\\\\.(retry\\\\.[0-9]+|dlq)"')),),
        ),
        Panel(
            "Retry tiers: messages waiting",
            (("{{queue}}", depth.format(sel=sel, match='=~".*\\\\.retry\\\\.[0-9]+"')),),
        ),
        Panel(
            "Dead-letter queues (alert: DeadLetterQueueNotEmpty)",
            (("{{queue}}", depth.format(sel=sel, match='=~".*\\\\.dlq"')),),
        ),
        Panel(
            "Messages consumed per second by outcome",
            (
                (
                    "{{queue}} {{outcome}}",
                    f"sum by (queue, outcome) (rate(shop_messages_consumed_total{{{sel}}}{RATE}))",
                ),
            ),
            "ops",
        ),
        Panel(
            "Outbox lag (alert: OutboxLagHigh above 30 s)",
            (("oldest unsent row", f"max(shop_outbox_lag_seconds{{{sel}}})"),),
            "s",
        ),
        Panel("Outbox rows pending", (("pending", f"max(shop_outbox_pending{{{sel}}})"),)),
    ]


def saga_panel(selector: str = "") -> Panel:
    """Orders reaching each end of the saga (paid, failed, cancelled, expired), per minute."""
    return Panel(
        "Saga outcomes per minute",
        (
            (
                "{{outcome}}",
                f"sum by (outcome) (rate(shop_saga_outcomes_total{selector}{RATE})) * 60",
            ),
        ),
    )


def gateway_panels() -> list[Panel]:
    """The gateway's own: response cache and rate limit."""
    lookups = (
        'sum by (route) (rate(gateway_cache_lookups_total{{job="gateway", result{match}}}'
        + RATE
        + "))"
    )
    return [
        Panel(
            "Response cache hit ratio by route",
            (
                (
                    "{{route}}",
                    ratio(lookups.format(match='="hit"'), lookups.format(match='=~"hit|miss"')),
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Rate-limit rejections per second by route",
            (
                (
                    "{{route}}",
                    f'sum by (route) (rate(gateway_rate_limit_rejections_total{{job="gateway"}}{RATE}))',
                ),
            ),
            "reqps",
        ),
    ]


def catalog_panels() -> list[Panel]:
    """The catalog's own: how its product cache loads, the write-behind view counters, expiry."""
    sel = 'job="catalog-service"'
    return [
        Panel(
            "Product cache: loads from PostgreSQL per second by outcome",
            (
                (
                    "{{outcome}}",
                    f"sum by (outcome) (rate(cache_loads_total{{{sel}}}{RATE}))",
                ),
            ),
            "ops",
            "Misses that reached the database (value, none = unknown sku, error).",
        ),
        Panel(
            "Product cache: callers that waited for another's load (stampede protection)",
            (
                (
                    "{{scope}}",
                    f"sum by (scope) (rate(cache_stampede_waits_total{{{sel}}}{RATE}))",
                ),
            ),
            "ops",
        ),
        Panel(
            "Product views waiting to be written behind",
            (("{{cache}}", f"max by (cache) (cache_write_behind_depth{{{sel}}})"),),
        ),
        Panel(
            "Stock reservations released by expiry per minute",
            (("expired", f"sum(rate(catalog_reservations_expired_total{{{sel}}}{RATE})) * 60"),),
        ),
    ]


def overview_panels() -> list[Panel]:
    """The whole system on one screen: every service's RED, what is broken, and the sagas."""
    by_job = 'job=~"gateway|order-service|payment-service|user-service|catalog-service"'
    total = f"sum by (job) (rate(shop_requests_total{RATE}))"
    return [
        Panel("Services up (1 = scraped)", (("{{job}} {{instance}}", f"up{{{by_job}}}"),)),
        Panel(
            "Firing alerts",
            (("{{alertname}}", 'sum by (alertname) (ALERTS{alertstate="firing"})'),),
        ),
        Panel("Requests per second by service", (("{{job}}", total),), "reqps"),
        Panel(
            "Server error ratio by service",
            (
                (
                    "{{job}}",
                    ratio(
                        f'sum by (job) (rate(shop_requests_total{{outcome="server_error"}}{RATE}))',
                        total,
                    ),
                ),
            ),
            "percentunit",
        ),
        Panel(
            "p99 latency by service (streams excluded)",
            (
                (
                    "{{job}}",
                    f"histogram_quantile(0.99, sum by (job, le) (rate(shop_request_duration_seconds_bucket{{{STREAMS}}}{RATE})))",
                ),
            ),
            "s",
        ),
        Panel(
            "Open circuit breakers",
            (
                (
                    "{{job}} → {{name}}",
                    'max by (job, name) (circuit_breaker_state{state="open"}) == 1',
                ),
            ),
        ),
        Panel(
            "Dead-letter queues",
            (("{{queue}}", 'max by (queue) (shop_queue_depth{queue=~".*\\\\.dlq"})'),),
        ),
        Panel(
            "Outbox lag by service", (("{{job}}", "max by (job) (shop_outbox_lag_seconds)"),), "s"
        ),
        saga_panel(),
    ]


def dashboards() -> dict[str, Board]:
    """File name -> dashboard: the overview and one per service."""
    found = {
        "shop-overview.json": Board("shop-overview", "Shop: system overview", overview_panels())
    }
    for job, title in SERVICES.items():
        panels = red_panels(job) + resilience_panels(job) + messaging_panels(job)
        if job == "gateway":
            panels += gateway_panels()
        if job == "order-service":
            panels.append(saga_panel(f'{{job="{job}"}}'))
        if job == "catalog-service":
            panels += catalog_panels()
        found[f"shop-{job}.json"] = Board(f"shop-{job}", f"Shop: {title}", panels)
    return found
