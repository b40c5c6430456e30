"""One trace as a terminal waterfall: each span on its own line under its parent, with its service,
its duration and a bar placed on the trace's time axis; links, events and errors beneath it.

    trace abababab… · 4 spans · 3 services · 100.0 ms
    gateway        POST /api/orders   100.0 ms │████████████████████│ server
    user-service     GetUser           20.0 ms │  ████              │ client
    user-service       SELECT users     8.0 ms │  ██                │ internal
    order-service    publish           20.0 ms │            ████    │ internal

A pure function of the spans: the demo prints it, the tests read it.
"""

from __future__ import annotations

from collections.abc import Sequence

from shop_common.observability.otlp import ReceivedSpan, tree_order

BAR_WIDTH = 40
NAME_WIDTH = 44
SERVICE_WIDTH = 18


def format_duration(ns: int) -> str:
    """12.3 ms, 0.42 ms, 1.25 s."""
    ms = ns / 1e6
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 1:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _bar(span: ReceivedSpan, start: int, total: int, width: int) -> str:
    """Cells from the span's start to its end on a `width`-cell axis over [start, start+total]."""
    if total <= 0:
        return "█" * width
    first = min(width - 1, int((span.start_ns - start) * width / total))
    last = min(width, max(first + 1, round((span.end_ns - start) * width / total)))
    return " " * first + "█" * (last - first) + " " * (width - last)


def _link_text(link: tuple[str, str], by_id: dict[str, ReceivedSpan], trace_id: str) -> str:
    linked_trace, linked_span = link
    target = by_id.get(linked_span)
    if target is not None:
        return f"↳ linked from {target.service}: {target.name}"
    where = "this trace" if linked_trace == trace_id else f"trace {linked_trace[:8]}…"
    return f"↳ linked from span {linked_span[:8]}… in {where}"


def render_waterfall(spans: Sequence[ReceivedSpan], bar_width: int = BAR_WIDTH) -> list[str]:
    """The lines of the waterfall of `spans` (one trace; any order)."""
    if not spans:
        return ["(no spans)"]
    start = min(span.start_ns for span in spans)
    total = max(span.end_ns for span in spans) - start
    ordered = tree_order(spans)
    by_id = {span.span_id: span for span in spans}
    service_width = min(SERVICE_WIDTH, max(len(span.service) for span in spans))
    labels = [("  " * depth) + span.name for depth, span in ordered]
    name_width = min(NAME_WIDTH, max(len(label) for label in labels))
    trace_ids = sorted({span.trace_id for span in spans})
    title = f"trace {trace_ids[0][:8]}…" if len(trace_ids) == 1 else f"{len(trace_ids)} traces"
    services = len({span.service for span in spans})
    lines = [f"{title} · {len(spans)} spans · {services} services · {format_duration(total)}"]
    pad = " " * (service_width + 2)
    for (depth, span), label in zip(ordered, labels, strict=True):
        service = _clip(span.service, service_width).ljust(service_width)
        name = _clip(label, name_width).ljust(name_width)
        mark = " ✗" if span.status == "error" else ""
        bar = _bar(span, start, total, bar_width)
        duration = format_duration(span.duration_ns)
        lines.append(f"{service}  {name}  {duration:>9} │{bar}│ {span.kind}{mark}".rstrip())
        indent = pad + "  " * (depth + 1)
        for link in span.links:
            lines.append(indent + _link_text(link, by_id, span.trace_id))
        for event, attributes in span.events:
            detail = ", ".join(f"{k}={v}" for k, v in attributes.items())
            lines.append(indent + f"• {event}" + (f" ({_clip(detail, 60)})" if detail else ""))
        if span.status == "error" and span.status_message:
            lines.append(indent + f"✗ {_clip(span.status_message, 80)}")
    return lines
