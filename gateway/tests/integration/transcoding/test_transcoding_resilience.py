"""A dead or silent user service: fast 503 with Retry-After from the breaker, 504 on deadlines,
and recovery once the service is back, without restarting the gateway."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from shop_common.resilience import BreakerConfig, CircuitState
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def silent_address() -> Iterator[str]:
    """A TCP port that accepts connections and never speaks (no HTTP/2 handshake)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


async def test_a_dead_user_service_gives_503_then_fast_breaker_503s_then_recovers(
    start_user_server, make_gateway, admin_token
) -> None:
    server = await start_user_server()
    port = server.port
    recovery = 0.5
    gateway = await make_gateway(
        f"127.0.0.1:{port}",
        timeout_seconds=3.0,
        breaker_config=BreakerConfig(consecutive_failures=2, recovery_timeout=recovery),
    )
    url = "/api/users/424242"
    assert (await gateway.http.get(url, headers=bearer(admin_token))).status_code == 404
    await server.stop(grace=0)

    for _ in range(2):
        down = await gateway.http.get(url, headers=bearer(admin_token))
        assert down.status_code == 503
        assert down.headers["retry-after"] == "1"
        assert down.json()["grpc_status"] == "UNAVAILABLE"
    assert gateway.breaker.state is CircuitState.OPEN
    rejected = await gateway.http.get(url, headers=bearer(admin_token))
    assert rejected.status_code == 503
    assert rejected.headers["content-type"] == "application/problem+json"
    assert int(rejected.headers["retry-after"]) >= 1
    assert rejected.json()["breaker"] == gateway.breaker.name  # refused without calling

    await start_user_server(f"127.0.0.1:{port}")

    async def found_again() -> bool:
        return (await gateway.http.get(url, headers=bearer(admin_token))).status_code == 404

    # The breaker lets a trial call through after `recovery`; the gRPC channel reconnects with
    # its own backoff (1 s, x1.6, jittered), a few steps while the server was down; each trial
    # may take the 3 s call timeout. x5 for a loaded machine.
    await eventually(
        found_again, timeout=5 * (recovery + 1.0 * 1.6**2 + 3.0), interval=0.1, what="404 again"
    )
    assert gateway.breaker.state is CircuitState.CLOSED


async def test_a_silent_user_service_is_504_for_calls_and_subscriptions(
    silent_address: str, make_gateway, admin_token
) -> None:
    gateway = await make_gateway(silent_address, timeout_seconds=0.3)
    response = await gateway.http.get("/api/users/1", headers=bearer(admin_token))
    assert response.status_code == 504
    assert response.json()["grpc_status"] == "DEADLINE_EXCEEDED"
    stream = await gateway.http.get(
        "/api/users/updates", params={"ids": "1"}, headers=bearer(admin_token)
    )
    assert stream.status_code == 504
    assert stream.headers["content-type"] == "application/problem+json"
