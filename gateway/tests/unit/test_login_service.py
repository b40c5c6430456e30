"""gateway.service_layer.login with a fake user service and throttle: the order of the steps and
exactly one verdict per admitted attempt."""

from __future__ import annotations

import asyncio

import pytest
from gateway.domain.login import (
    AuthenticatedUser,
    AuthenticatorUnavailableError,
    LoginRefusedError,
    LoginThrottledError,
)
from gateway.service_layer.login import LoginService

from .fakes import FakeAuthenticator, FakeIssuer, FakeThrottle

ADA = AuthenticatedUser("42", ("user", "admin"))


def service(throttle: FakeThrottle | None) -> tuple[LoginService, FakeAuthenticator]:
    users = FakeAuthenticator({("ada@example.com", "right"): ADA})
    return LoginService(users, FakeIssuer(), throttle), users


async def test_the_right_password_gets_a_token_and_reopens_the_account() -> None:
    throttle = FakeThrottle()
    login, _ = service(throttle)
    issued = await login.login("ada@example.com", "right", "192.0.2.1")
    assert issued.access_token == "token:42:user,admin"
    assert issued.expires_in == 900
    assert throttle.steps == ["begin", "succeeded"]


async def test_a_wrong_password_counts_a_failure_and_carries_the_budget() -> None:
    throttle = FakeThrottle()
    login, _ = service(throttle)
    with pytest.raises(LoginRefusedError) as refused:
        await login.login("ada@example.com", "wrong", "192.0.2.1")
    assert throttle.steps == ["begin", "failed"]
    assert refused.value.failure is not None
    assert refused.value.failure.headers()["RateLimit"] == '"login-failures";r=2;t=900'


async def test_a_closed_account_is_refused_before_the_password_is_checked() -> None:
    throttle = FakeThrottle(closed_for=8)
    login, users = service(throttle)
    with pytest.raises(LoginThrottledError) as throttled:
        await login.login("ada@example.com", "right", "192.0.2.1")
    assert throttled.value.retry_after_seconds == 8
    assert users.calls == []  # argon2 never ran
    assert throttle.steps == ["begin"]


async def test_an_unavailable_user_service_is_nobodys_fault() -> None:
    throttle = FakeThrottle()
    login, users = service(throttle)
    users.unavailable = True
    with pytest.raises(AuthenticatorUnavailableError):
        await login.login("ada@example.com", "right", "192.0.2.1")
    assert throttle.steps == ["begin", "unjudged"]


async def test_any_other_error_is_unjudged_too_but_a_cancellation_is_no_answer() -> None:
    throttle = FakeThrottle()
    login, users = service(throttle)
    users.crash = RuntimeError("boom")
    with pytest.raises(RuntimeError):
        await login.login("ada@example.com", "right", "192.0.2.1")
    assert throttle.steps == ["begin", "unjudged"]
    throttle.steps.clear()
    users.crash = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        await login.login("ada@example.com", "right", "192.0.2.1")
    assert throttle.steps == ["begin"]


async def test_without_a_throttle_only_the_verdict_matters() -> None:
    login, _ = service(None)
    assert (await login.login("ada@example.com", "right", "192.0.2.1")).access_token
    with pytest.raises(LoginRefusedError) as refused:
        await login.login("ada@example.com", "wrong", "192.0.2.1")
    assert refused.value.failure is None
