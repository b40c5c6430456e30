"""The sign-up rules and the live order watch, on fakes (no I/O)."""

from __future__ import annotations

import pytest
from web_service.domain.errors import InvalidSignUp, Refused
from web_service.domain.orders import OrderState
from web_service.domain.signup import SignUpForm
from web_service.service_layer.order_watch import OrderWatch


def test_a_sign_up_form_is_trimmed() -> None:
    form = SignUpForm("  ada@example.com ", "  Ada   Lovelace ", "long enough").checked()
    assert (form.email, form.name) == ("ada@example.com", "Ada Lovelace")


@pytest.mark.parametrize(
    ("email", "name", "password", "rule"),
    [
        ("not-an-email", "Ada", "long enough", "email"),
        ("ada@localhost", "Ada", "long enough", "email"),
        ("ada@example.com", "   ", "long enough", "name"),
        ("ada@example.com", "A\x00da", "long enough", "name"),
        ("ada@example.com", "x" * 101, "long enough", "name"),
        ("ada@example.com", "Ada", "short", "password"),
        ("ada@example.com", "Ada", "x" * 129, "password"),
    ],
)
def test_a_broken_sign_up_rule_is_named(email: str, name: str, password: str, rule: str) -> None:
    with pytest.raises(InvalidSignUp, match=f"^{rule}:"):
        SignUpForm(email, name, password).checked()


class ScriptedOrders:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.reads = 0

    async def order_state(self, token: str, order_id: str) -> OrderState:
        status = self.statuses[min(self.reads, len(self.statuses) - 1)]
        self.reads += 1
        if status == "GONE":
            raise Refused(404, "no such order")
        return OrderState(order_id, status, None, status)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def _follow(statuses: list[str], max_seconds: float = 60) -> tuple[list[str], int]:
    orders, clock = ScriptedOrders(statuses), FakeClock()
    watch = OrderWatch(orders, interval=1, max_seconds=max_seconds, sleep=clock.sleep, clock=clock)
    seen = [state.status async for state in watch.follow("token", "o-1")]
    return seen, orders.reads


async def test_the_watch_yields_each_change_once_and_stops_at_a_resting_state() -> None:
    seen, reads = await _follow(["PENDING", "PENDING", "PENDING", "PAID", "REFUNDED"])
    assert seen == ["PENDING", "PAID"]
    assert reads == 4


async def test_the_watch_follows_a_refund_to_its_end() -> None:
    seen, _ = await _follow(["CANCELLED_REFUND_PENDING", "REFUNDED"])
    assert seen == ["CANCELLED_REFUND_PENDING", "REFUNDED"]


async def test_the_watch_gives_up_after_its_time() -> None:
    seen, reads = await _follow(["PENDING"], max_seconds=5)
    assert seen == ["PENDING"]
    assert reads == 6  # at 0, 1, ... 5 s: the next read would come after the 5 s


async def test_a_refused_read_ends_the_watch_with_it() -> None:
    with pytest.raises(Refused):
        await _follow(["PENDING", "GONE"])
