"""Topology upgrades: declaring only adds, so a binding an earlier version declared stays on a
broker until the topology retires it. The catalog joined the saga: payment no longer charges on
order.created, and a broker declared before must stop routing order.created to its queue."""

from __future__ import annotations

from dataclasses import replace

import aio_pika
import pytest
from shop_common.messaging import SHOP_TOPOLOGY, Binding, Topology, connect, declare

from .conftest import queue_depth

pytestmark = pytest.mark.infra

PAYMENT_QUEUE = "payment.order-events"
OLD_BINDING = Binding("orders", "order.created")


def before_the_catalog_joined() -> Topology:
    """The shop topology as the earlier version declared it: payment bound to order.created."""
    queues = tuple(
        replace(spec, bindings=(*spec.bindings, OLD_BINDING))
        if spec.name == PAYMENT_QUEUE
        else spec
        for spec in SHOP_TOPOLOGY.queues
    )
    return replace(SHOP_TOPOLOGY, queues=queues, retired=())


async def publish_order_created(channel: aio_pika.abc.AbstractChannel) -> None:
    exchange = await channel.get_exchange("orders")
    await exchange.publish(aio_pika.Message(b"{}"), routing_key="order.created")


async def test_declare_unbinds_what_the_old_topology_bound(amqp_vhost_url: str) -> None:
    connection = await connect(amqp_vhost_url, attempts=3, name="topology-test")
    try:
        channel = await connection.channel()
        await declare(channel, before_the_catalog_joined())
        await publish_order_created(channel)
        assert await queue_depth(connection, PAYMENT_QUEUE) == 1  # the old route is live

        await declare(channel, SHOP_TOPOLOGY)  # a service of this version starts
        await declare(channel, SHOP_TOPOLOGY)  # and another: unbinding again is harmless
        await publish_order_created(channel)
        assert await queue_depth(connection, PAYMENT_QUEUE) == 1  # nothing new routed there
        assert await queue_depth(connection, "catalog.order-events") == 2  # the catalog's now
    finally:
        await connection.close()


async def test_a_fresh_broker_never_gets_the_retired_binding(amqp_vhost_url: str) -> None:
    connection = await connect(amqp_vhost_url, attempts=3, name="topology-test")
    try:
        channel = await connection.channel()
        await declare(channel, SHOP_TOPOLOGY)
        await publish_order_created(channel)
        assert await queue_depth(connection, PAYMENT_QUEUE) == 0
    finally:
        await connection.close()


def test_the_retired_binding_is_not_declared_any_more() -> None:
    [retired] = SHOP_TOPOLOGY.retired
    assert (retired.queue, retired.binding) == (PAYMENT_QUEUE, OLD_BINDING)
    assert OLD_BINDING not in SHOP_TOPOLOGY.queue(PAYMENT_QUEUE).bindings
    assert SHOP_TOPOLOGY.only(PAYMENT_QUEUE).retired == SHOP_TOPOLOGY.retired
