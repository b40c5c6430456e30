"""The terminal waterfall: tree order, indentation, bars on the trace's time axis, links, events."""

from __future__ import annotations

from typing import Any

from shop_devstack.traces import ReceivedSpan
from shop_devstack.traces.waterfall import format_duration, render_waterfall

TRACE = "ab" * 16
MS = 1_000_000


def span(
    span_id: str,
    name: str,
    start_ms: int,
    end_ms: int,
    parent: str | None = None,
    service: str = "order-service",
    **extra: Any,
) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=extra.pop("trace_id", TRACE),
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        service=service,
        kind=extra.pop("kind", "internal"),
        start_ns=1_700_000_000_000 * MS + start_ms * MS,
        end_ns=1_700_000_000_000 * MS + end_ms * MS,
        **extra,
    )


def bar(line: str) -> str:
    return line.split("│")[1]


def test_children_sit_under_their_parent_indented_in_start_order() -> None:
    spans = [
        span("c2", "publish", 60, 80, parent="r1"),
        span("r1", "POST /api/orders", 0, 100, service="gateway", kind="server"),
        span("c1", "GetUser", 10, 30, parent="r1", service="user-service", kind="client"),
        span("g1", "SELECT users", 12, 20, parent="c1", service="user-service"),
    ]
    assert render_waterfall(spans, bar_width=20) == [
        f"trace {TRACE[:8]}… · 4 spans · 3 services · 100.0 ms",
        "gateway        POST /api/orders   100.0 ms │████████████████████│ server",
        "user-service     GetUser           20.0 ms │  ████              │ client",
        "user-service       SELECT users     8.0 ms │  ██                │ internal",
        "order-service    publish           20.0 ms │            ████    │ internal",
    ]


def test_bars_are_scaled_to_the_trace_time_range() -> None:
    lines = render_waterfall(
        [
            span("r", "root", 0, 100),
            span("a", "first half", 0, 50, "r"),
            span("b", "last quarter", 75, 100, "r"),
        ],
        bar_width=20,
    )
    assert bar(lines[1]) == "█" * 20
    assert bar(lines[2]) == "█" * 10 + " " * 10
    assert bar(lines[3]) == " " * 15 + "█" * 5


def test_a_zero_length_span_still_gets_one_cell() -> None:
    lines = render_waterfall(
        [span("r", "root", 0, 100), span("e", "instant", 100, 100, "r")], bar_width=10
    )
    assert bar(lines[2]) == " " * 9 + "█"


def test_links_events_and_errors_are_shown_under_the_span() -> None:
    spans = [
        span("p1", "outbox relay publish", 0, 10, kind="producer"),
        span(
            "c1",
            "payment consume",
            20,
            40,
            service="payment-service",
            kind="consumer",
            links=[(TRACE, "p1"), ("cd" * 16, "ef" * 8)],
            events=[("retry", {"attempt": 2}), ("cache.hit", {})],
            status="error",
            status_message="provider down",
        ),
    ]
    lines = render_waterfall(spans)
    consume = next(i for i, line in enumerate(lines) if "payment consume" in line)
    assert lines[consume].endswith("consumer ✗")
    assert lines[consume + 1].strip() == "↳ linked from order-service: outbox relay publish"
    assert lines[consume + 2].strip() == "↳ linked from span efefefef… in trace cdcdcdcd…"
    assert lines[consume + 3].strip() == "• retry (attempt=2)"
    assert lines[consume + 4].strip() == "• cache.hit"
    assert lines[consume + 5].strip() == "✗ provider down"


def test_a_span_whose_parent_is_missing_is_shown_as_a_root() -> None:
    lines = render_waterfall([span("x", "orphan", 5, 10, parent="gone"), span("r", "root", 0, 10)])
    assert [line.split("  ")[1] for line in lines[1:]] == ["root", "orphan"]


def test_a_parent_cycle_does_not_loop_and_loses_no_span() -> None:
    lines = render_waterfall([span("a", "A", 0, 10, parent="b"), span("b", "B", 1, 5, parent="a")])
    assert len(lines) == 3


def test_long_names_are_clipped_and_empty_input_says_so() -> None:
    lines = render_waterfall(
        [span("r", "x" * 100, 0, 1, service="a-very-long-service-name-indeed")]
    )
    assert "x" * 43 + "…" in lines[1] and "x" * 44 not in lines[1]
    assert lines[1].startswith("a-very-long-servi…")
    assert render_waterfall([]) == ["(no spans)"]


def test_durations_read_naturally() -> None:
    assert [format_duration(n) for n in (420_000, 12_340_000, 1_250_000_000)] == [
        "0.42 ms",
        "12.3 ms",
        "1.25 s",
    ]
