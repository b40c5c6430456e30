"""A robust AMQP connection whose first attempt is retried too (the broker may not be up yet)."""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection
from pamqp.common import FieldTable

from shop_common.logging import get_logger

log = get_logger(__name__)


class BrokerUnavailableError(ConnectionError):
    """The broker did not answer within the connect attempts."""


async def connect(
    url: str,
    *,
    attempts: int = 30,
    initial_delay: float = 0.2,
    max_delay: float = 5.0,
    name: str | None = None,
    reconnect_interval: float = 1.0,
) -> AbstractRobustConnection:
    """Open a robust connection, retrying the first connect with capped exponential backoff."""
    delay = initial_delay
    last_error: BaseException | None = None
    properties: FieldTable = {"connection_name": name} if name else {}
    for attempt in range(1, attempts + 1):
        try:
            return await aio_pika.connect_robust(
                url, client_properties=properties, reconnect_interval=reconnect_interval
            )
        except (OSError, aiormq.exceptions.AMQPConnectionError) as error:
            last_error = error
            log.warning("amqp connect failed", attempt=attempt, error=str(error))
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)
    raise BrokerUnavailableError(f"broker unreachable after {attempts} attempts: {last_error}")


def is_connected(connection: AbstractRobustConnection) -> bool:
    """True while the connection is up (False while it reconnects)."""
    return not connection.is_closed and connection.connected.is_set()
