"""In-memory fakes of the web service's ports (accounts, order reads), a signing key, and the
app started on them (no gateway, no infrastructure).

Test modules cannot import conftest (importlib mode): they take the fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.discovery.static import StaticRegistry
from web_service.domain.console import Scrape
from web_service.domain.errors import AccountExists, Refused
from web_service.domain.orders import OrderState
from web_service.entrypoints.http import create_app
from web_service.settings import Settings


@dataclass
class FakeAccounts:
    """Accounts by email; ids from 1."""

    created: dict[str, tuple[int, str]] = field(default_factory=dict)

    async def create_shopper(self, email: str, name: str, password: str) -> int:
        if email in self.created:
            raise AccountExists("an account with this email exists; sign in instead")
        self.created[email] = (len(self.created) + 1, name)
        return len(self.created)


@dataclass
class FakeOrders:
    """Each order's states, read one per call (the last one stays); owner-checked."""

    states: dict[str, list[str]] = field(default_factory=dict)
    owner_token: str = ""
    reads: int = 0

    async def order_state(self, token: str, order_id: str) -> OrderState:
        self.reads += 1
        if token != self.owner_token or order_id not in self.states:
            raise Refused(404, "no such order")
        queue = self.states[order_id]
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        return OrderState(order_id, status, None, f"at-{status}")


@dataclass
class FakeMetrics:
    """One payment-service instance with an open breaker; rounds counted."""

    rounds: int = 0

    async def scrape(self) -> list[Scrape]:
        self.rounds += 1
        state = (("name", "payment-provider"), ("state", "open"))
        return [
            Scrape(
                "payment-service", "127.0.0.1:8002", True, (("circuit_breaker_state", state, 1.0),)
            )
        ]


@dataclass
class FakeDeadLetters:
    """One dead letter in the DLQ of payment.order-events; the calls seen."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def _known(self, queue: str) -> None:
        if queue.removesuffix(".dlq") != "payment.order-events":
            raise Refused(404, f"no queue {queue!r} in the topology")

    async def browse(self, queue: str, limit: int) -> list[dict[str, object]]:
        self._known(queue)
        self.calls.append(("browse", queue))
        return [{"message_id": "m-1", "event_type": "order.created", "attempts": 4}]

    async def replay(self, queue: str, ids: list[str] | None) -> list[str]:
        self._known(queue)
        self.calls.append(("replay", queue))
        return ids or ["m-1"]


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("web-test-kid")


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, "shop-gateway", "shop")


@dataclass
class WebApp:
    http: httpx.AsyncClient
    accounts: FakeAccounts
    orders: FakeOrders
    issuer: TokenIssuer
    metrics: FakeMetrics
    dead_letters: FakeDeadLetters


@pytest_asyncio.fixture
async def web(signing_key: SigningKey, issuer: TokenIssuer) -> AsyncIterator[WebApp]:
    settings = Settings(
        environment="test",
        signup_account_password="test-only-signup-password",
        jwt_public_keys={signing_key.kid: signing_key.public_pem},
        order_poll_interval_seconds=0.01,
        stream_max_seconds=5,
    )
    accounts, orders, metrics, letters = (
        FakeAccounts(),
        FakeOrders(),
        FakeMetrics(),
        FakeDeadLetters(),
    )
    app = create_app(
        settings,
        accounts=accounts,
        orders=orders,
        metrics=metrics,
        dead_letters=letters,
        registry=StaticRegistry(),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
            yield WebApp(http, accounts, orders, issuer, metrics, letters)
