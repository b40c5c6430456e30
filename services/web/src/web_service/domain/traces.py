"""The traces the console keeps (OTLP spans the services export to the web service): the last
traces, bounded, and the last order's as waterfall rows.

An order's trace is the one with the gateway's server span of a POST to the orders; the rows are
the spans in tree order (shop_common.observability.otlp.tree_order) with their offset and length.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from shop_common.observability.otlp import ReceivedSpan, tree_order


def is_order_post(span: ReceivedSpan) -> bool:
    """The gateway's server span of a POST .../orders (where an order's trace starts)."""
    return (
        "gateway" in span.service
        and span.kind == "server"
        and span.name.startswith("POST")
        and "orders" in span.name
    )


class TraceBook:
    """The last `max_traces` traces (least recently touched dropped first), each at most
    `max_spans` spans, and which one is the last order's."""

    def __init__(self, *, max_traces: int = 100, max_spans: int = 500) -> None:
        self._traces: OrderedDict[str, list[ReceivedSpan]] = OrderedDict()
        self._max_traces = max_traces
        self._max_spans = max_spans
        self._last_order: tuple[int, str] | None = None  # (start_ns, trace_id)

    def add(self, spans: Iterable[ReceivedSpan]) -> None:
        """Keep spans; note a newer order's trace."""
        for span in spans:
            kept = self._traces.setdefault(span.trace_id, [])
            self._traces.move_to_end(span.trace_id)
            if len(kept) < self._max_spans:
                kept.append(span)
            if is_order_post(span) and (
                self._last_order is None or span.start_ns >= self._last_order[0]
            ):
                self._last_order = (span.start_ns, span.trace_id)
        while len(self._traces) > self._max_traces:
            dropped, _ = self._traces.popitem(last=False)
            if self._last_order and self._last_order[1] == dropped:
                self._last_order = None

    def last_order(self) -> dict[str, Any] | None:
        """The last order's trace as waterfall rows, or None when no order's trace came."""
        if self._last_order is None:
            return None
        trace_id = self._last_order[1]
        spans = self._traces.get(trace_id, [])
        if not spans:
            return None
        start = min(s.start_ns for s in spans)
        end = max(s.end_ns for s in spans)
        total = max(end - start, 1)
        return {
            "trace_id": trace_id,
            "duration_ms": round(total / 1e6, 3),
            "spans": [
                {
                    "depth": depth,
                    "service": span.service,
                    "name": span.name,
                    "offset": round((span.start_ns - start) / total, 4),
                    "width": round(span.duration_ns / total, 4),
                    "duration_ms": round(span.duration_ns / 1e6, 3),
                    "error": span.status == "error",
                }
                for depth, span in tree_order(spans)
            ],
        }
