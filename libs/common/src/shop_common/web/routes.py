"""The route template a request matched, for bounded-cardinality labels and logs."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template ("/orders/{order_id}"), or "<unmatched>".

    Read after the app ran: Starlette's router stores the matched route in scope["route"]
    (inside a Mount that is the inner route, so the template lacks the mount's prefix).
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED_ROUTE
    return template
