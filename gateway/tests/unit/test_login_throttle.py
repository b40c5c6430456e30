"""gateway.domain.login_throttle: the backoff schedule and the counter keys."""

from __future__ import annotations

import pytest
from gateway.domain.login_throttle import Policy, account_key, client_key, normalise_username


def test_backoff_is_free_then_doubles_up_to_the_cap() -> None:
    policy = Policy(free=5, window_seconds=900, base_seconds=1, max_seconds=300)
    delays = [policy.delay_seconds(n) for n in range(1, 17)]
    assert delays == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert policy.delay_seconds(10_000) == 300
    assert policy.args() == [5, 900_000, 1000, 300_000]


@pytest.mark.parametrize(
    "spelling",
    ["ada@example.com", "ADA@Example.COM", "  ada@example.com\t", "\u00a0ada@example.com"],
)
def test_spellings_of_one_email_share_one_key(spelling: str) -> None:
    assert normalise_username(spelling) == "ada@example.com"
    assert account_key(spelling) == account_key("ada@example.com")
    assert "ada" not in account_key(spelling)  # Redis never holds the address itself


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("unknown") == "unknown"
