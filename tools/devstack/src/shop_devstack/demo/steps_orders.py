"""Demo steps about orders: the saga to PAID, cancel with refund, a failing payment provider."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from shop_devstack.client import check
from shop_devstack.demo.context import DemoContext, poll
from shop_devstack.demo.narration import expect

Observe = Callable[[str], None]


async def charges(ctx: DemoContext, order_id: str) -> list[dict[str, Any]]:
    """The order's successful charges, as the payment service records them (read as the admin)."""
    payments = await ctx.client.payments_for(await ctx.admin(), order_id)
    return [p for p in payments if p.get("kind") == "charge" and p.get("status") == "succeeded"]


async def orders_become_paid(ctx: DemoContext, observe: Observe) -> None:
    """Orders are PENDING, then PAID once the payment service answers through RabbitMQ."""
    _, token = await ctx.user()
    orders = [await ctx.place_order(token) for _ in range(3)]
    observe(
        f"placed {len(orders)} orders: "
        + ", ".join(f"{o['id'][:8]}… {o['status']}" for o in orders)
    )
    for order in orders:
        paid = await ctx.wait_for_status(token, order["id"], "PAID")
        charged = await charges(ctx, order["id"])
        observe(
            f"order {order['id'][:8]}… {paid['status']} total {paid.get('total')}; {len(charged)} charge(s)"
        )
        expect(len(charged) == 1, f"order {order['id']} has {len(charged)} charges")
    response = await ctx.client.place_order(token, [], idempotency_key="demo-same-key")
    observe(
        f"an empty order is refused: {response.status_code} {response.headers.get('content-type')}"
    )
    expect(response.status_code in (400, 422), f"an empty order gave {response.status_code}")


async def cancel_and_refund(ctx: DemoContext, observe: Observe) -> None:
    """Cancelling a PAID order compensates: the payment service refunds, the order becomes REFUNDED."""
    _, token = await ctx.user()
    order = await ctx.place_order(token)
    await ctx.wait_for_status(token, order["id"], "PAID")
    cancelled = await ctx.client.cancel_order(token, order["id"])
    observe(f"cancel {order['id'][:8]}…: {cancelled['status']}")
    refunded = await ctx.wait_for_status(token, order["id"], "REFUNDED")
    payments = await ctx.client.payments_for(await ctx.admin(), order["id"])
    records = [f"{p.get('kind')} {p.get('status')} {p.get('amount')}" for p in payments]
    observe(f"order {refunded['status']}; payment records: {records}")
    expect(
        sorted(str(p.get("kind")) for p in payments) == ["charge", "refund"],
        f"expected one charge and one refund, got {records}",
    )
    again = await ctx.client.http.post(
        f"/api/orders/{order['id']}/cancel", headers={"Authorization": f"Bearer {token}"}
    )
    observe(f"cancelling again: {again.status_code} (an illegal transition)")
    expect(again.status_code == 409, f"a second cancel gave {again.status_code}, not 409")


async def provider_outage(ctx: DemoContext, observe: Observe) -> None:
    """The payment provider goes down: orders stay PENDING and retry through the delay queues;
    when it is back they drain to PAID, each charged exactly once."""
    admin = await ctx.admin()
    _, token = await ctx.user()
    state = await ctx.client.set_provider(admin, down=True)
    observe(f"payment provider switched to failing: {state}")
    try:
        orders = [await ctx.place_order(token) for _ in range(5)]
        await asyncio.sleep(3)
        statuses = [(await ctx.client.get_order(token, o["id"]))["status"] for o in orders]
        observe(f"3 s later the {len(orders)} orders are: {statuses}")
        expect(all(s == "PENDING" for s in statuses), f"orders did not stay PENDING: {statuses}")
    finally:
        state = await ctx.client.set_provider(admin, down=False)
        observe(f"payment provider back: {state}")
    for order in orders:
        await ctx.wait_for_status(token, order["id"], "PAID", within=60)
    counts = [len(await charges(ctx, o["id"])) for o in orders]
    observe(f"all {len(orders)} PAID; charges per order: {counts}")
    expect(counts == [1] * len(orders), f"charges per order: {counts}")


async def user_instance_down(ctx: DemoContext, observe: Observe) -> None:
    """One user-service instance stops: every call moves to the other; the breakers stay closed."""
    if not ctx.system.can_stop_instances:
        observe("neither our launcher nor a compose stack: cannot stop an instance")
        expect(False, "needs the local launcher (make up) or a compose stack (make compose-up)")
    account, token = await ctx.user()
    how = await ctx.system.stop_instance("user-1")
    observe(f"stopped user-1 ({how})")
    try:
        statuses = []
        for _ in range(20):
            response = await ctx.client.get_user(token, account.id, **{"Cache-Control": "no-cache"})
            statuses.append(response.status_code)
        observe(
            f"20 GETs while user-1 is down: {statuses.count(200)} × 200, others {[s for s in statuses if s != 200]}"
        )
        expect(statuses.count(200) == 20, f"not every call moved to user-2: {statuses}")
        metrics = check(await ctx.client.http.get("/metrics"), 200).text
        states = breaker_states(metrics)
        for name, state in sorted(states.items()):
            observe(f"gateway breaker {name}: {state}")
        user_breakers = {n: st for n, st in states.items() if "user" in n}
        expect(bool(user_breakers), "the gateway exposes no user-service breaker state")
        expect(
            all(st == "closed" for st in user_breakers.values()),
            f"a user-service breaker is not closed although every call succeeded: {user_breakers}",
        )
        observe(
            "no call failed, so the breaker stays closed: gRPC's round_robin policy dropped the "
            "dead instance's subchannel and sent every call to user-2"
        )
    finally:
        how = await ctx.system.start_instance("user-1")
        observe(f"user-1 started again ({how})")
    await poll(
        lambda: ctx.client.get_user(token, account.id),
        lambda r: r.status_code == 200,
        20,
        "calls did not succeed after user-1 came back",
    )


def breaker_states(metrics: str) -> dict[str, str]:
    """{breaker name: current state} from circuit_breaker_state{name=...,state=...} 1.0 lines."""
    states: dict[str, str] = {}
    for match in re.finditer(
        r'^circuit_breaker_state\{name="([^"]+)",state="([^"]+)"\} 1\.0$', metrics, re.MULTILINE
    ):
        states[match.group(1)] = match.group(2)
    return states
