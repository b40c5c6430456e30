"""Demo steps about the catalog: browse it, see an order rejected for want of stock, see a price
change (admin) reach the next order. The shop decides prices: an order line is a sku and a
quantity, priced at the catalog's current price when the order is placed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from shop_devstack.client import Item
from shop_devstack.demo.context import DemoContext, poll
from shop_devstack.demo.narration import expect

Observe = Callable[[str], None]
# A seed product that starts out of stock (catalog migration 0002: TOYS-006, HOME-007).
SOLD_OUT = "TOYS-006"
# The product whose price the admin changes (a seed product nothing else in the demo orders).
REPRICED = "BOOK-006"


async def browse_catalog(ctx: DemoContext, observe: Observe) -> None:
    """Anyone can browse: a page of products with their prices, then one product and its stock."""
    page = await ctx.client.products(category="books", page_size="3")
    shown = [f"{p['sku']} {p['name']} {p['price']} {p['currency']}" for p in page["items"]]
    observe(f"GET /api/products?category=books (no token needed): {shown}")
    expect(len(page["items"]) == 3, f"expected 3 books, got {len(page['items'])}")
    product = await ctx.client.product("BOOK-001")
    available = await ctx.stocked("BOOK-001")
    observe(
        f"GET /api/products/BOOK-001: {product['name']} at {product['price']}; {available} in stock"
    )
    _, token = await ctx.user()
    order = await ctx.place_order(token, [Item("BOOK-001", 2)])
    line = order["items"][0]
    observe(
        f"an order of 2 × BOOK-001 sends no price: the shop priced it at {line['unit_price']}, "
        f"total {order['total']}"
    )
    expect(
        line["unit_price"] == product["price"],
        f"priced {line['unit_price']}, listed {product['price']}",
    )
    sent_a_price = await ctx.client.http.post(
        "/api/orders",
        json={"items": [{"sku": "BOOK-001", "quantity": 1, "unit_price": "0.01"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    observe(f"an order that names its own price is refused: {sent_a_price.status_code}")
    expect(sent_a_price.status_code == 422, f"a client price gave {sent_a_price.status_code}")


async def out_of_stock(ctx: DemoContext, observe: Observe) -> None:
    """The catalog reserves stock before anyone charges: an order it cannot fill is REJECTED,
    and the payment service never hears of it."""
    _, token = await ctx.user()
    available = await ctx.client.stock(SOLD_OUT)
    observe(f"{SOLD_OUT} has {available} in stock")
    expect(available == 0, f"{SOLD_OUT} was restocked ({available}): the step needs it sold out")
    response = await ctx.client.place_order(token, [Item(SOLD_OUT, 1)])
    order = response.json()
    observe(
        f"the order is accepted as {order['status']} (stock is checked by the saga, not the POST)"
    )
    rejected = await ctx.wait_for_status(token, order["id"], "REJECTED")
    observe(
        f"then the catalog answers stock.rejected: {rejected['status']} ({rejected['failure_reason']})"
    )
    payments = await ctx.client.payments_for(await ctx.admin(), order["id"])
    observe(f"payment records of the order: {payments} (nothing was charged)")
    expect(payments == [], f"a rejected order has payments: {payments}")


async def price_change(ctx: DemoContext, observe: Observe) -> None:
    """An admin changes a price; product.price_changed evicts the order service's cached price,
    so the next order pays the new one, and an earlier order keeps the price it was placed at."""
    admin = await ctx.admin()
    _, token = await ctx.user()
    before = await ctx.place_order(token, [Item(REPRICED, 1)])
    old = Decimal(before["items"][0]["unit_price"])
    new = old + Decimal("1.00") if old < Decimal(900) else Decimal("9.99")
    observe(f"an order of {REPRICED} is priced {old} (the order service now caches that price)")
    changed = await ctx.client.set_price(admin, REPRICED, new)
    observe(
        f"the admin sets {REPRICED} to {changed['price']}: the catalog publishes product.price_changed"
    )

    async def next_order() -> dict[str, Any]:
        return await ctx.place_order(token, [Item(REPRICED, 1)])

    after = await poll(
        next_order,
        lambda o: Decimal(o["items"][0]["unit_price"]) == new,
        15.0,
        "the new price did not reach the next order",
    )
    observe(f"the next order pays {after['items'][0]['unit_price']}")
    kept = await ctx.client.get_order(token, before["id"])
    observe(
        f"the earlier order still shows {kept['items'][0]['unit_price']}: an order keeps its price"
    )
    expect(Decimal(kept["items"][0]["unit_price"]) == old, "the earlier order's price changed")
