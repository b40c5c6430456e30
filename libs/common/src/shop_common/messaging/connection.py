"""A robust AMQP connection whose first attempt is retried too (the broker may not be up yet)."""

from __future__ import annotations

from dataclasses import replace

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection
from pamqp.common import FieldTable

from shop_common.logging import get_logger
from shop_common.resilience.retry import RetryPolicy, retry_call

log = get_logger(__name__)


class BrokerUnavailableError(ConnectionError):
    """The broker did not answer within the connect attempts."""


def _is_connect_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError | aiormq.exceptions.AMQPConnectionError)


# The first connect: 30 attempts, 0.2 s apart doubling up to 5 s (about 2 min in all). Once up,
# aio-pika's robust connection reconnects by itself every reconnect_interval.
AMQP_CONNECT_RETRY = RetryPolicy(
    max_attempts=30, initial_backoff=0.2, max_backoff=5.0, jitter=0.0, retry_on=_is_connect_error
)


async def connect(
    url: str,
    *,
    retry: RetryPolicy = AMQP_CONNECT_RETRY,
    attempts: int | None = None,
    name: str | None = None,
    reconnect_interval: float = 1.0,
) -> AbstractRobustConnection:
    """Open a robust connection, retrying the first connect as `retry` says (attempts, when
    given, replaces its max_attempts); BrokerUnavailableError when it gives up."""
    policy = retry if attempts is None else replace(retry, max_attempts=attempts)
    properties: FieldTable = {"connection_name": name} if name else {}
    made = 0

    async def attempt() -> AbstractRobustConnection:
        nonlocal made
        made += 1
        try:
            return await aio_pika.connect_robust(
                url, client_properties=properties, reconnect_interval=reconnect_interval
            )
        except Exception as error:
            if policy.retry_on(error):
                log.warning("amqp_connect_failed", attempt=made, error=str(error))
            raise

    try:
        return await retry_call(policy, attempt)
    except Exception as error:
        if not policy.retry_on(error):
            raise
        raise BrokerUnavailableError(
            f"broker unreachable after {made} attempts: {error}"
        ) from error


def is_connected(connection: AbstractRobustConnection) -> bool:
    """True while the connection is up (False while it reconnects)."""
    return not connection.is_closed and connection.connected.is_set()
