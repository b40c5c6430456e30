"""What every demo step shares: the gateway client, the running system, logged-in accounts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shop_devstack.accounts import Account, admin_token, login, new_user
from shop_devstack.client import TERMINAL_ORDER_STATES, Item, ShopClient, check
from shop_devstack.demo.narration import StepFailed
from shop_devstack.running import RunningSystem
from shop_devstack.traces import OtlpReceiver

T = TypeVar("T")

BOOK = Item("BOOK-001", 1)


@dataclass
class DemoContext:
    """Shared by the steps; accounts are created lazily so any step can run on its own."""

    client: ShopClient
    system: RunningSystem
    _admin: str | None = None
    _user: tuple[Account, str] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    # The demo's own OTLP receiver, set only when the system exports its traces to it (exports_to).
    traces: OtlpReceiver | None = None

    async def admin(self) -> str:
        """An admin access token (the admin account is created on first use)."""
        if self._admin is None:
            self._admin = await admin_token(self.client, self.system.run_dir)
        return self._admin

    async def user(self) -> tuple[Account, str]:
        """A regular user and its access token, obtained by logging in with its password."""
        if self._user is None:
            account = await new_user(self.client, await self.admin(), "Grace Shopper")
            self._user = (account, await login(self.client, account.email, account.password))
        return self._user

    async def stocked(self, sku: str, at_least: int = 50) -> int:
        """The sku's stock, restocked by the admin first if it is below at_least (a system that
        has run many demos sells its shelves empty)."""
        available = await self.client.stock(sku)
        if available < at_least:
            available = await self.client.restock(await self.admin(), sku, 1_000)
        return available

    async def place_order(self, token: str, items: list[Item] | None = None) -> dict[str, Any]:
        """Place an order that must be accepted (201); its skus stocked first."""
        for item in items or [BOOK]:
            if item.sku not in self.notes.setdefault("stocked", set()):
                await self.stocked(item.sku)
                self.notes["stocked"].add(item.sku)
        response = await self.client.place_order(token, items or [BOOK])
        order: dict[str, Any] = check(response, 201, 202).json()
        return order

    async def wait_for_status(
        self, token: str, order_id: str, wanted: str, within: float = 30.0
    ) -> dict[str, Any]:
        """Poll the order until it reaches `wanted`; StepFailed if it ends elsewhere or times out."""
        return await poll(
            lambda: self.client.get_order(token, order_id),
            lambda order: order["status"] == wanted,
            within,
            f"order {order_id} did not become {wanted}",
            give_up=lambda order: (
                order["status"] in TERMINAL_ORDER_STATES and order["status"] != wanted
            ),
        )


async def poll(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    within: float,
    failure: str,
    *,
    give_up: Callable[[T], bool] = lambda _: False,
    interval: float = 0.2,
) -> T:
    """Fetch until done(value) or the deadline; StepFailed(failure + last value) otherwise."""
    deadline = time.monotonic() + within
    value = await fetch()
    while not done(value):
        if give_up(value) or time.monotonic() > deadline:
            raise StepFailed(f"{failure} within {within:.0f} s (last seen: {value})")
        await asyncio.sleep(interval)
        value = await fetch()
    return value


def exports_to(system: RunningSystem, receiver: OtlpReceiver | None) -> bool:
    """True when the system's services send their traces to this receiver (the launcher records
    where they send them in its state file; a compose stack's services send them elsewhere)."""
    if receiver is None:
        return False
    url = str(system.state.get("traces_url") or "").replace("//localhost:", "//127.0.0.1:")
    return url == f"{receiver.endpoint}/v1/traces"
