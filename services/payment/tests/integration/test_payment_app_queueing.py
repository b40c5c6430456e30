"""Queue semantics through running apps: refunds overtake charges; two instances share the work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.infra

Poll = Callable[..., Awaitable[None]]


async def test_a_refund_waiting_in_the_queue_is_handled_before_new_charges(
    payment_app: Any, start_app: Any, broker: Any, eventually: Poll
) -> None:
    paid = await broker.stock_reserved("15.00")
    await broker.result(paid.order_id, "payment.succeeded")
    await payment_app.stop()  # the backlog builds up while no instance consumes
    backlog = [await broker.stock_reserved("5.00") for _ in range(20)]
    await broker.order_cancelled(paid.order_id)  # published last, priority 9

    restarted = await start_app(consumer_prefetch=1, consumer_concurrency=1)

    await broker.result(paid.order_id, "payment.refunded")

    async def backlog_charged() -> bool:
        return all(
            any(e.event_type == "payment.succeeded" for e in broker.results_for(o.order_id))
            for o in backlog
        )

    await eventually(backlog_charged)
    async with restarted.engine.connect() as conn:
        kinds = [
            row.kind
            for row in await conn.execute(
                text(
                    "SELECT kind FROM payments WHERE order_id <> :paid ORDER BY created_at, id"
                ).bindparams(paid=paid.order_id)
            )
        ]
        refund_at, first_new_charge_at = (
            await conn.execute(
                text(
                    "SELECT (SELECT created_at FROM payments WHERE kind = 'refund'),"
                    " (SELECT min(created_at) FROM payments WHERE order_id <> :paid)"
                ),
                {"paid": paid.order_id},
            )
        ).one()
    assert kinds == ["charge"] * 20
    assert refund_at < first_new_charge_at


async def test_two_instances_share_the_queue_and_never_charge_the_same_order(
    payment_app: Any, start_app: Any, broker: Any, as_admin: dict[str, str], eventually: Poll
) -> None:
    other = await start_app()
    for app in (payment_app, other):
        # A little provider latency keeps both instances busy at once.
        await app.client.put("/payments/admin/provider", json={"latency_ms": 3}, headers=as_admin)

    orders = []
    for _ in range(6):  # 20 confirms in flight at a time: a loaded broker still confirms in time
        orders += await asyncio.gather(*(broker.stock_reserved("12.00") for _ in range(20)))
    ids = {o.order_id for o in orders}

    async def all_charged() -> bool:
        succeeded = {
            e.payload["order_id"] for e in broker.results if e.event_type == "payment.succeeded"
        }
        return {str(i) for i in ids} <= succeeded

    await eventually(all_charged, timeout=40)
    mine, theirs = payment_app.provider.charged_keys, other.provider.charged_keys
    assert mine and theirs, "both instances took part"
    assert not mine & theirs
    assert mine | theirs == ids
    succeeded = [e for e in broker.results if e.event_type == "payment.succeeded"]
    assert len(succeeded) == len(ids)
    async with other.engine.connect() as conn:
        per_order = (
            await conn.execute(text("SELECT count(*), count(DISTINCT order_id) FROM payments"))
        ).one()
    assert tuple(per_order) == (120, 120)
