"""POST /auth/token throttling through a real gateway, real Redis and a real user service.

Thresholds are lowered per test (settings), so that backoffs are short; the policy is the
production one. `user_server.pipeline.calls_total` counts the calls that reached the user
service: a throttled attempt must not be one of them.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from shop_common.auth import SigningKey, TokenIssuer
from shop_common.clients.user import UserClient
from shop_testing.wait import eventually
from user_service.server import UserServer, create_server

from .conftest import ORDER_ROUTES, Backend, RunningGateway, StartGateway, user_service_settings

pytestmark = pytest.mark.infra
PASSWORD = "correct horse battery"
WRONG = "not the password"
# An anonymous, rate-limited route: its rate-limit identity is the client address.
PUBLIC_LIMITED: dict[str, Any] = {
    "name": "public-limited",
    "path": "/api/orders/public",
    "methods": ["GET"],
    "backend": "order-service",
    "strip_prefix": "/api",
    "auth": False,
    "rate_limit": {"limit": 2, "window_seconds": 60, "fail": "closed"},
}


@pytest_asyncio.fixture
async def user_server(database_url: str, signing_key: SigningKey) -> AsyncIterator[UserServer]:
    settings = user_service_settings(database_url, signing_key)
    running, _ = await create_server(settings, "127.0.0.1:0")
    yield running
    await running.stop(grace=0.2)


async def _new_account(server: UserServer, issuer: TokenIssuer) -> str:
    client = UserClient([f"127.0.0.1:{server.port}"])
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    try:
        await client.create_user(
            email, "Ada", PASSWORD, roles=["user"], token=issuer.issue("1", ["admin"]), timeout=30
        )
    finally:
        await client.close()
    return email


def _form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def _calls(server: UserServer) -> int:
    return server.pipeline.calls_total


async def _gateway(
    start: StartGateway, server: UserServer | None, **settings: Any
) -> RunningGateway:
    addresses = {"user-service": f"127.0.0.1:{server.port}"} if server else {}
    return await start(addresses, **settings)


async def test_wrong_passwords_back_off_then_the_right_one_works_after_retry_after(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    email = await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway, user_server, login_account_free_failures=3, login_backoff_base_seconds=3
    )
    before = _calls(user_server)
    async with gateway.client() as client:
        answers = [await client.post("/auth/token", data=_form(email, WRONG)) for _ in range(25)]
        right = await client.post("/auth/token", data=_form(email, PASSWORD))
        statuses = [a.status_code for a in answers]
        # 3 free failures, then the 4th is heard and closes the account for 3 s.
        assert statuses[:5] == [401, 401, 401, 401, 429], statuses
        assert set(statuses) <= {401, 429}
        heard = statuses.count(401)
        assert _calls(user_server) - before == heard  # no 429 reached the user service
        refused = answers[4]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["error"] == "slow_down"
        assert refused.json()["status"] == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 3
        assert "access_token" not in refused.text
        # The right password is refused too while the account is closed, without being checked.
        assert right.status_code == 429, right.text
        wait = int(right.headers["retry-after"])
        assert 1 <= wait <= 300
        assert _calls(user_server) - before == heard

        token: dict[str, Any] = {}

        async def logged_in() -> bool:
            response = await client.post("/auth/token", data=_form(email, PASSWORD))
            assert response.status_code in (200, 429), response.text
            token.update(response.json())
            return response.status_code == 200

        started = time.monotonic()
        await eventually(logged_in, timeout=wait + 10, interval=0.25, what="the account reopened")
        assert time.monotonic() - started >= wait - 1.5  # not before Retry-After (1 s rounding)
        assert "access_token" in token
        # Success cleared the account's count: its free failures are there again.
        again = [await client.post("/auth/token", data=_form(email, WRONG)) for _ in range(3)]
        assert [a.status_code for a in again] == [401, 401, 401]


async def test_a_burst_of_parallel_guesses_is_counted_atomically(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    email = await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway, user_server, login_account_free_failures=3, login_backoff_base_seconds=30
    )
    before = _calls(user_server)
    async with gateway.client() as client:
        answers = await asyncio.gather(
            *(client.post("/auth/token", data=_form(email, WRONG)) for _ in range(20))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * 4 + [429] * 16, statuses
    assert _calls(user_server) - before == 4


async def test_spellings_of_one_email_share_its_counter(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    email = await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway, user_server, login_account_free_failures=2, login_backoff_base_seconds=30
    )
    spellings = [email, email.upper(), f"  {email.title()} ", f"\u00a0{email}"]
    async with gateway.client() as client:
        answers = [await client.post("/auth/token", data=_form(s, WRONG)) for s in spellings]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]


async def test_one_accounts_failures_do_not_lock_out_another(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    victim, other = await _new_account(user_server, issuer), await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway, user_server, login_account_free_failures=1, login_backoff_base_seconds=60
    )
    async with gateway.client() as client:
        for _ in range(3):
            await client.post("/auth/token", data=_form(victim, WRONG))
        closed = await client.post("/auth/token", data=_form(victim, PASSWORD))
        other_ok = await client.post("/auth/token", data=_form(other, PASSWORD))
        other_wrong = await client.post("/auth/token", data=_form(other, WRONG))
    assert closed.status_code == 429
    assert other_ok.status_code == 200
    assert other_wrong.status_code == 401


async def test_the_client_budget_counts_failures_only_and_spoofed_xff_does_not_dodge_it(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    email = await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway, user_server, login_client_free_failures=3, login_backoff_base_seconds=60
    )
    async with gateway.client() as client:
        # Successes from one address cost nothing (many users behind one NAT, the e2e suites).
        for _ in range(5):
            ok = await client.post("/auth/token", data=_form(email, PASSWORD))
            assert ok.status_code == 200
        answers = []
        for n in range(6):  # each guess against another account, from another "address"
            answers.append(
                await client.post(
                    "/auth/token",
                    data=_form(f"nobody-{uuid.uuid4().hex[:8]}@example.com", WRONG),
                    headers={
                        "X-Forwarded-For": f"203.0.113.{n + 1}",
                        "Forwarded": f"for=198.51.100.{n + 1}",
                    },
                )
            )
        right = await client.post("/auth/token", data=_form(email, PASSWORD))
    statuses = [a.status_code for a in answers]
    assert statuses == [401, 401, 401, 401, 429, 429], statuses
    remaining = [a.headers["ratelimit"] for a in answers[:4]]
    assert remaining == [f'"login-failures";r={r};t=900' for r in (2, 1, 0, 0)]
    assert answers[0].headers["ratelimit-policy"] == '"login-failures";q=3;w=900'
    assert 1 <= int(answers[4].headers["retry-after"]) <= 60
    # The address is closed for every account, the right password included.
    assert right.status_code == 429


async def test_behind_a_trusted_proxy_the_forwarded_client_is_the_identity(
    start_gateway: StartGateway, user_server: UserServer, backend: Backend
) -> None:
    gateway = await start_gateway(
        {"user-service": f"127.0.0.1:{user_server.port}", "order-service": backend.address},
        routes=[PUBLIC_LIMITED, *ORDER_ROUTES],
        trusted_proxies="127.0.0.0/8",
        login_client_free_failures=1,
        login_backoff_base_seconds=60,
    )

    def via(client_ip: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"6.6.6.6, {client_ip}", "X-Forwarded-Proto": "https"}

    async def guess(client: httpx.AsyncClient, client_ip: str) -> httpx.Response:
        name = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
        return await client.post("/auth/token", data=_form(name, WRONG), headers=via(client_ip))

    async with gateway.client() as client:
        first = [await guess(client, "203.0.113.1") for _ in range(3)]
        other_client = await guess(client, "203.0.113.2")
        reads = [
            await client.get("/api/orders/public", headers=via(ip))
            for ip in ("192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2")
        ]
    assert [r.status_code for r in first] == [401, 401, 429]
    assert other_client.status_code == 401  # another client behind the same proxy
    assert [r.status_code for r in reads] == [200, 200, 429, 200]
    seen = reads[0].json()["headers"]
    assert seen["x-forwarded-for"] == "192.0.2.1"  # the resolved client, not the chain
    assert seen["x-forwarded-proto"] == "https"  # the trusted proxy's word


async def test_from_an_untrusted_peer_xff_changes_no_rate_limit_identity(
    start_gateway: StartGateway, backend: Backend
) -> None:
    gateway = await start_gateway(
        {"order-service": backend.address}, routes=[PUBLIC_LIMITED, *ORDER_ROUTES]
    )
    async with gateway.client() as client:
        reads = [
            await client.get(
                "/api/orders/public",
                headers={"X-Forwarded-For": f"192.0.2.{n}", "Forwarded": f"for=192.0.2.{n}"},
            )
            for n in range(4)
        ]
    assert [r.status_code for r in reads] == [200, 200, 429, 429]
    seen = reads[0].json()["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "forwarded" not in seen


async def test_redis_down_logins_fail_open_to_a_per_process_throttle(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead_redis = f"redis://127.0.0.1:{free.getsockname()[1]}/0"
    victim, other = await _new_account(user_server, issuer), await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway,
        user_server,
        redis_url=dead_redis,
        redis_timeout_seconds=0.5,
        login_account_free_failures=2,
        login_backoff_base_seconds=60,
    )
    before = _calls(user_server)
    async with gateway.client() as client:
        wrong = [await client.post("/auth/token", data=_form(victim, WRONG)) for _ in range(5)]
        right = await client.post("/auth/token", data=_form(victim, PASSWORD))
        other_ok = await client.post("/auth/token", data=_form(other, PASSWORD))
        metrics = (await client.get("/metrics")).text
    assert [r.status_code for r in wrong] == [401, 401, 401, 429, 429]
    assert right.status_code == 429
    assert wrong[3].headers["content-type"] == "application/problem+json"
    assert other_ok.status_code == 200  # logins go on while Redis is down
    assert _calls(user_server) - before == 3 + 1
    assert 'gateway_login_throttled_total{scope="account",store="local"}' in metrics
    assert 'gateway_login_throttle_fallback_total{step="begin"}' in metrics


async def test_throttling_is_counted_in_metrics(
    start_gateway: StartGateway, user_server: UserServer, issuer: TokenIssuer
) -> None:
    email = await _new_account(user_server, issuer)
    gateway = await _gateway(
        start_gateway, user_server, login_account_free_failures=0, login_backoff_base_seconds=60
    )
    async with gateway.client() as client:
        for _ in range(2):
            await client.post("/auth/token", data=_form(email, WRONG))
        metrics = (await client.get("/metrics")).text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith('gateway_login_throttled_total{scope="account",store="redis"}')
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert 'gateway_login_backoffs_total{scope="account"}' in metrics
