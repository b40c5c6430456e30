"""What the use cases need from outside; bootstrap wires the real ones (adapters/)."""

from __future__ import annotations

from typing import Any, Protocol

from web_service.domain.console import Scrape
from web_service.domain.orders import OrderState


class Accounts(Protocol):
    """Creates shopper accounts (AccountExists, InvalidSignUp, Unavailable)."""

    async def create_shopper(self, email: str, name: str, password: str) -> int: ...


class OrderReader(Protocol):
    """Reads one order with the caller's own token (Refused, Unavailable)."""

    async def order_state(self, token: str, order_id: str) -> OrderState: ...


class MetricsSource(Protocol):
    """One scrape of every known instance."""

    async def scrape(self) -> list[Scrape]: ...


class DeadLetters(Protocol):
    """The dead-letter queues of the topology: list (left in place) and replay (Unavailable)."""

    async def browse(self, queue: str, limit: int) -> list[dict[str, object]]: ...

    async def replay(self, queue: str, ids: list[str] | None) -> list[str]: ...


class ChaosSwitches(Protocol):
    """The chaos switches of each service's instances, called with the admin's token."""

    async def rules(self, token: str) -> dict[str, list[dict[str, Any]]]: ...

    async def put(self, service: str, rule: dict[str, Any], token: str) -> list[dict[str, Any]]: ...

    async def clear(self, service: str, token: str) -> list[dict[str, Any]]: ...
