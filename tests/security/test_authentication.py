"""Issue 11 through the launched system's gateway: login throttling, forwarded-address spoofing,
and canonical tokens only.

Every test makes its own accounts, so that one test's failures never throttle another's.
The system runs the default thresholds (5 free attempts per account, then 1 s doubling; 100
failures per client address), and no trusted proxies: every request here comes from 127.0.0.1.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from shop_devstack.accounts import Account, new_user
from shop_devstack.client import ShopClient
from shop_devstack.running import RunningSystem
from shop_testing.rawhttp import assert_problem, raw_request
from shop_testing.wait import eventually


class Actors(Protocol):
    """What this file uses of tests/security/conftest.py's `actors` fixture."""

    admin_token: str
    alice: Account
    alice_token: str


pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]
WRONG = "not-the-password"
TOKEN_PATH = "/auth/token"


def _form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def _login(
    client: ShopClient, username: str, password: str, **headers: str
) -> httpx.Response:
    return await client.http.post(TOKEN_PATH, data=_form(username, password), headers=headers)


def _assert_throttled(response: httpx.Response) -> int:
    """A 429 problem+json with the OAuth error code and Retry-After; the seconds to wait."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 429
    assert body["error"] == "slow_down"
    assert "access_token" not in body
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= 300
    return wait


async def _close_for_a_while(client: ShopClient, account: Account, seconds: int) -> int:
    """Keep guessing wrong until the account is closed for at least `seconds`; Retry-After."""
    found: list[int] = []

    async def closed_long_enough() -> bool:
        response = await _login(client, account.email, WRONG)
        assert response.status_code in (401, 429), response.text
        if response.status_code == 429 and _assert_throttled(response) >= seconds:
            found.append(int(response.headers["retry-after"]))
            return True
        return False

    await eventually(closed_long_enough, timeout=90, interval=0.05, what="a longer backoff")
    return found[0]


async def test_25_wrong_passwords_are_throttled_and_the_right_one_works_after_retry_after(
    client: ShopClient, actors: Actors
) -> None:
    account = await new_user(client, actors.admin_token, "Throttled Tess")
    answers = [await _login(client, account.email, WRONG) for _ in range(25)]
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [401] * 5, statuses  # the free attempts
    assert set(statuses) <= {401, 429}, statuses
    assert 429 in statuses, statuses  # past the budget
    # Each heard attempt past the free ones doubles the wait (1, 2, 4 s ...): of 25 sent in a
    # few seconds only a handful can have been heard.
    assert statuses.count(401) <= 10, statuses
    for refused in (a for a in answers if a.status_code == 429):
        _assert_throttled(refused)
    for failed in (a for a in answers if a.status_code == 401):
        assert failed.json()["error"] == "invalid_grant"
        assert failed.headers["www-authenticate"].startswith("Bearer")

    wait = await _close_for_a_while(client, account, 3)
    right = await _login(client, account.email, account.password)
    _assert_throttled(right)  # the right password too, while closed

    token: list[str] = []

    async def logged_in() -> bool:
        response = await _login(client, account.email, account.password)
        assert response.status_code in (200, 429), response.text
        if response.status_code == 200:
            token.append(response.json()["access_token"])
        return bool(token)

    started = time.monotonic()
    await eventually(logged_in, timeout=wait + 15, interval=0.25, what="the account reopened")
    assert time.monotonic() - started >= wait - 2  # not long before Retry-After said
    # The token works, and the success cleared the account's failures.
    me = await client.get_user(token[0], account.id)
    assert me.status_code == 200
    assert (await _login(client, account.email, WRONG)).status_code == 401


def _authenticate_calls(run_dir: Path) -> int:
    """Authenticate calls the user service instances logged (one JSON "rpc" line per call)."""
    pattern = re.compile(r'"rpc".*Authenticate|Authenticate.*"rpc"')
    return sum(
        1
        for log in (run_dir / "logs").glob("user-*.log")
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if pattern.search(line)
    )


@pytest.mark.launcher  # reads the user services' logs in the launcher's run directory
async def test_a_throttled_attempt_does_not_reach_the_user_service(
    client: ShopClient, actors: Actors, system: RunningSystem
) -> None:
    account = await new_user(client, actors.admin_token, "Unreached Uma")
    await _close_for_a_while(client, account, 4)
    before = _authenticate_calls(system.run_dir)
    throttled = [
        await _login(client, account.email, password) for password in (WRONG, account.password) * 5
    ]
    for response in throttled:
        _assert_throttled(response)
    # A marker that does reach the user service: once its line is there, every earlier call's is.
    marker = await _login(client, f"nobody-{uuid.uuid4().hex[:8]}@shop.example", WRONG)
    assert marker.status_code == 401
    await eventually(
        lambda: _authenticate_calls(system.run_dir) >= before + 1,
        timeout=30,
        what="the marker's Authenticate logged",
    )
    assert _authenticate_calls(system.run_dir) == before + 1


async def test_one_accounts_failures_do_not_lock_out_another(
    client: ShopClient, actors: Actors
) -> None:
    victim = await new_user(client, actors.admin_token, "Victim Vera")
    other = await new_user(client, actors.admin_token, "Other Otto")
    await _close_for_a_while(client, victim, 4)
    _assert_throttled(await _login(client, victim.email, victim.password))
    # Another spelling of the victim's email is the same account, and closed too.
    _assert_throttled(await _login(client, f"  {victim.email.upper()} ", victim.password))
    ok = await _login(client, other.email, other.password)
    assert ok.status_code == 200, ok.text
    wrong = await _login(client, other.email, WRONG)
    assert wrong.status_code == 401


def _remaining(response: httpx.Response) -> int:
    """The client's free failures left, from the 401's RateLimit field."""
    assert response.status_code == 401, response.text
    assert response.headers["ratelimit-policy"].startswith('"login-failures";q=')
    found = re.fullmatch(r'"login-failures";r=(\d+);t=\d+', response.headers["ratelimit"])
    assert found is not None, response.headers["ratelimit"]
    return int(found.group(1))


async def test_spoofed_x_forwarded_for_does_not_dodge_the_client_budget(
    client: ShopClient,
) -> None:
    """Failures from one connection count against one address whatever it claims to be."""
    remaining = []
    for n, spoof in enumerate(
        [
            {},
            {"X-Forwarded-For": "203.0.113.7"},
            {"X-Forwarded-For": "198.51.100.9, 203.0.113.8"},
            {"Forwarded": "for=192.0.2.44"},
            {"X-Real-IP": "192.0.2.45", "X-Forwarded-For": "::1"},
        ]
    ):
        name = f"nobody-{n}-{uuid.uuid4().hex[:8]}@shop.example"  # a fresh account each time
        remaining.append(_remaining(await _login(client, name, WRONG, **spoof)))
    # One budget, spent one failure at a time (a spoof that worked would start a fresh one).
    assert remaining == list(range(remaining[0], remaining[0] - 5, -1)), remaining
    assert remaining[-1] > 0, "the budget is spent; the suite failed far more logins than it should"


def _with_last_char_bits_set(segment: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


VARIANTS = {
    "padded-signature": lambda h, p, s: f"{h}.{p}.{s}==",
    "one-pad": lambda h, p, s: f"{h}.{p}.{s}=",
    "padded-header": lambda h, p, s: f"{h}==.{p}.{s}",
    "inner-space": lambda h, p, s: f"{h}.{p} .{s}",
    "two-segments": lambda h, p, s: f"{h}.{p}",
    "four-segments": lambda h, p, s: f"{h}.{p}.{s}.{s}",
    "empty-signature": lambda h, p, s: f"{h}.{p}.",
    "plus": lambda h, p, s: f"{h}.{p}.+{s[1:]}",
    "slash": lambda h, p, s: f"{h}.{p}./{s[1:]}",
    "trailing-bits": lambda h, p, s: f"{h}.{p}.{_with_last_char_bits_set(s)}",
    "percent-encoded-pad": lambda h, p, s: f"{h}.{p}.{s}%3D%3D",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_a_non_canonical_spelling_of_a_valid_token_is_401(
    gateway_url: str, actors: Actors, variant: str
) -> None:
    header, payload, signature = actors.alice_token.split(".")
    assert len(signature) % 4 == 2  # 256 signature bytes: the last character has unused bits
    path = f"/api/users/{actors.alice.id}"
    token = VARIANTS[variant](header, payload, signature)
    assert token != actors.alice_token
    control = await raw_request(
        gateway_url, "GET", path, {"Authorization": f"Bearer {actors.alice_token}"}
    )
    assert control.status == 200
    response = await raw_request(gateway_url, "GET", path, {"Authorization": f"Bearer {token}"})
    body = assert_problem(response, 401)
    challenge = response.header("www-authenticate") or ""
    assert challenge.startswith('Bearer realm="shop"'), challenge
    assert 'error="invalid_token"' in challenge
    assert "alice" not in str(body).lower()


async def test_throttling_is_counted_in_the_gateways_metrics(
    client: ShopClient, actors: Actors
) -> None:
    def throttled(text: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('gateway_login_throttled_total{scope="account"')
        )

    before = throttled((await client.http.get("/metrics")).text)
    account = await new_user(client, actors.admin_token, "Counted Cora")
    await _close_for_a_while(client, account, 1)
    _assert_throttled(await _login(client, account.email, WRONG))
    metrics = (await client.http.get("/metrics")).text
    assert throttled(metrics) >= before + 2
    assert 'gateway_login_backoffs_total{scope="account"}' in metrics
