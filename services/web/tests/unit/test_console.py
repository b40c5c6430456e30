"""The console: parsing an exposition, the last minute's deltas, the snapshot, and its API
(admins only: anonymous 401, a shopper 403)."""

from __future__ import annotations

from typing import Any

from web_service.adapters.metrics_scraper import parse
from web_service.domain.console import History, Scrape, counters, snapshot

EXPOSITION = """\
# HELP circuit_breaker_state 1 for the current state
# TYPE circuit_breaker_state gauge
circuit_breaker_state{name="payment-provider",state="closed"} 0.0
circuit_breaker_state{name="payment-provider",state="open"} 1.0
circuit_breaker_failure_rate{name="payment-provider"} 0.75
# TYPE cache_hits_total counter
cache_hits_total{cache="users",level="l1"} 30.0
cache_misses_total{cache="users",level="l1"} 10.0
# TYPE shop_queue_depth gauge
shop_queue_depth{queue="payment.order-events"} 2.0
shop_queue_depth{queue="payment.order-events.retry.0"} 1.0
shop_queue_depth{queue="payment.order-events.dlq"} 3.0
# TYPE shop_messages_consumed_total counter
shop_messages_consumed_total{outcome="retry",queue="payment.order-events"} 4.0
# TYPE shop_saga_outcomes_total counter
shop_saga_outcomes_total{outcome="paid"} 5.0
shop_outbox_pending 2.0
shop_outbox_lag_seconds 1.5
# TYPE shop_request_duration_seconds histogram
shop_request_duration_seconds_bucket{le="0.1"} 3.0
"""


def _round(history: History, at: float, scale: float) -> dict[str, Any]:
    text = EXPOSITION.replace(" 4.0\n", f" {4 * scale}\n").replace(" 5.0\n", f" {5 * scale}\n")
    scrapes = [
        Scrape("payment-service", "127.0.0.1:8002", True, parse(text)),
        Scrape("order-service", "127.0.0.1:8001", False, error="ConnectError"),
    ]
    history.add(at, counters(scrapes))
    return snapshot(scrapes, history, at)


def test_only_the_wanted_families_are_parsed() -> None:
    names = {name for name, _, _ in parse(EXPOSITION)}
    assert "shop_request_duration_seconds_bucket" not in names
    assert {"circuit_breaker_state", "shop_queue_depth", "shop_saga_outcomes_total"} <= names


def test_a_snapshot_shows_health_breakers_caches_queues_outbox_and_sagas() -> None:
    history = History(60)
    _round(history, 0, 1)
    snap = _round(history, 30, 3)
    services = {s["service"]: s for s in snap["services"]}
    assert services["payment-service"]["up"] == 1
    assert services["order-service"]["instances"][0] == {
        "address": "127.0.0.1:8001",
        "up": False,
        "error": "ConnectError",
    }
    assert snap["breakers"] == [
        {
            "service": "payment-service",
            "name": "payment-provider",
            "state": "open",
            "failure_rate": 0.75,
        }
    ]
    assert snap["caches"][0]["hit_ratio"] == 0.75
    queues = {q["queue"]: q for q in snap["queues"]}
    assert queues["payment.order-events.dlq"]["kind"] == "dlq"
    assert queues["payment.order-events.retry.0"]["kind"] == "retry"
    assert queues["payment.order-events"]["handled_1m"] == {"retry": 8}  # 12 - 4
    assert snap["sagas"] == [{"outcome": "paid", "total": 15.0, "last_minute": 10.0}]
    assert snap["outbox"] == [{"service": "payment-service", "pending": 2.0, "lag_seconds": 1.5}]
    assert snap["window_seconds"] == 30


def test_the_window_forgets_old_rounds_and_a_restart_counts_from_zero() -> None:
    history = History(60)
    key = ("order-service", "shop_saga_outcomes_total", (("outcome", "paid"),))
    for at, value in ((0, 1.0), (50, 5.0), (100, 9.0), (130, 2.0)):
        history.add(at, {key: value})
    assert history.delta(key) == 2.0  # went down (restarted): counts its new value
    history.add(200, {key: 6.0})
    assert history.delta(key) == 4.0
    assert history.span_seconds <= 70


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CONSOLE_CALLS = (
    ("GET", "/web/console/snapshot", None),
    ("GET", "/web/console/events", None),
    ("GET", "/web/console/dead-letters/payment.order-events", None),
    ("POST", "/web/console/dead-letters/payment.order-events/replay", {"ids": None}),
    ("GET", "/web/console/chaos", None),
    ("PUT", "/web/console/chaos/order-service", {"path_prefix": "/orders", "error_ratio": 1.0}),
    ("DELETE", "/web/console/chaos/order-service", None),
)


async def test_every_console_endpoint_is_for_admins_only(web: Any) -> None:
    shopper = _bearer(web.issuer.issue("7", ["user"]))
    for method, path, body in CONSOLE_CALLS:
        anonymous = await web.http.request(method, path, json=body)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["content-type"] == "application/problem+json"
        refused = await web.http.request(method, path, json=body, headers=shopper)
        assert refused.status_code == 403, path
    assert web.metrics.rounds == 0
    assert web.dead_letters.calls == []


async def test_an_admin_gets_a_snapshot_and_browses_and_replays_dead_letters(web: Any) -> None:
    admin = _bearer(web.issuer.issue("1", ["admin"]))
    snap = await web.http.get("/web/console/snapshot", headers=admin)
    assert snap.status_code == 200
    assert snap.json()["services"][0]["service"] == "payment-service"
    listed = await web.http.get("/web/console/dead-letters/payment.order-events", headers=admin)
    assert listed.json()["messages"][0]["message_id"] == "m-1"
    replayed = await web.http.post(
        "/web/console/dead-letters/payment.order-events/replay",
        json={"ids": ["m-1"]},
        headers=admin,
    )
    assert replayed.json() == {"replayed": ["m-1"]}
    for bad in ("/web/console/dead-letters/..%2Fx", "/web/console/dead-letters/A%00"):
        assert (await web.http.get(bad, headers=admin)).status_code in (404, 422)
    unknown = await web.http.get("/web/console/dead-letters/no.such.queue", headers=admin)
    assert unknown.status_code == 404
    wrong = await web.http.post(
        "/web/console/dead-letters/payment.order-events/replay", json={"ids": "all"}, headers=admin
    )
    assert wrong.status_code == 422
    unknown_service = await web.http.put(
        "/web/console/chaos/no-such-service", json={"path_prefix": "/"}, headers=admin
    )
    assert unknown_service.status_code == 404
    bad_rule = await web.http.put(
        "/web/console/chaos/order-service", json={"path_prefix": "x"}, headers=admin
    )
    assert bad_rule.status_code == 422
    # No instance known (an empty registry): every service is listed with none.
    rules = await web.http.get("/web/console/chaos", headers=admin)
    assert rules.json() == {
        "order-service": [],
        "payment-service": [],
        "catalog-service": [],
        "web-service": [],
    }


def _export(trace_id: bytes) -> bytes:
    """One OTLP export: the gateway's POST /api/orders with the order service's child span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def resource_spans(service: str, *spans: Span) -> ResourceSpans:
        name = KeyValue(key="service.name", value=AnyValue(string_value=service))
        return ResourceSpans(
            resource=Resource(attributes=[name]), scope_spans=[ScopeSpans(spans=list(spans))]
        )

    root = Span(
        trace_id=trace_id,
        span_id=b"\x01" * 8,
        name="POST /api/orders",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_000_000_000,
        end_time_unix_nano=1_040_000_000,
    )
    child = Span(
        trace_id=trace_id,
        span_id=b"\x02" * 8,
        parent_span_id=b"\x01" * 8,
        name="POST /orders",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_010_000_000,
        end_time_unix_nano=1_030_000_000,
    )
    export = ExportTraceServiceRequest(
        resource_spans=[resource_spans("gateway", root), resource_spans("order-service", child)]
    )
    return export.SerializeToString()


async def test_the_last_orders_trace_is_a_waterfall_in_the_snapshot(web: Any) -> None:
    admin = _bearer(web.issuer.issue("1", ["admin"]))
    assert (await web.http.get("/web/console/snapshot", headers=admin)).json()["trace"] is None
    sent = await web.http.post(
        "/v1/traces",
        content=_export(b"\xab" * 16),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert sent.status_code == 200
    trace = (await web.http.get("/web/console/snapshot", headers=admin)).json()["trace"]
    assert trace["trace_id"] == "ab" * 16
    assert trace["duration_ms"] == 40.0
    assert [(s["depth"], s["service"], s["name"]) for s in trace["spans"]] == [
        (0, "gateway", "POST /api/orders"),
        (1, "order-service", "POST /orders"),
    ]
    assert trace["spans"][1]["offset"] == 0.25
    assert trace["spans"][1]["width"] == 0.5


async def test_a_payload_that_is_no_otlp_export_is_a_4xx(web: Any) -> None:
    bad = await web.http.post(
        "/v1/traces", content=b"\xff\x00junk", headers={"Content-Type": "application/x-protobuf"}
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    wrong_type = await web.http.post(
        "/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    bad_json = await web.http.post(
        "/v1/traces", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
