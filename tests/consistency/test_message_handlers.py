"""Every queue's handler registry takes exactly what the shop's topology routes to that queue."""

from __future__ import annotations

import pytest
from catalog_service.entrypoints.consumers import order_events as catalog_order_events
from gateway.entrypoints.consumers import catalog_changes as gateway_catalog_changes
from gateway.entrypoints.consumers import user_changes as gateway_user_changes
from order_service.entrypoints.consumers import catalog_changes, payment_results, user_changes
from payment_service.entrypoints.consumers import order_events
from shop_common.messaging.handlers import Handlers
from shop_common.messaging.topology import SHOP_TOPOLOGY

REGISTRIES: list[Handlers[object]] = [
    payment_results,  # type: ignore[list-item]
    user_changes,  # type: ignore[list-item]
    catalog_changes,  # type: ignore[list-item]
    order_events,  # type: ignore[list-item]
    catalog_order_events,  # type: ignore[list-item]
    gateway_user_changes,  # type: ignore[list-item]
    gateway_catalog_changes,  # type: ignore[list-item]
]


@pytest.mark.parametrize("handlers", REGISTRIES, ids=lambda h: h.queue)
def test_the_topology_routes_exactly_what_the_handlers_take(handlers: Handlers[object]) -> None:
    handlers.check(SHOP_TOPOLOGY)


def test_every_consumed_queue_has_a_registry() -> None:
    consumed = {spec.name for spec in SHOP_TOPOLOGY.queues if not spec.tap}
    assert consumed == {h.queue for h in REGISTRIES}
