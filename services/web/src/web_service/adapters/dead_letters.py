"""The dead-letter browser's broker side: shop_common.messaging.dlq over one lazily opened
connection (the storefront never needs the broker, so the service starts without it).

Only the DLQs of the work queues of the shop's topology are reachable (any other name is a
404, never a passive declare of an arbitrary queue). A broker that cannot be reached is
Unavailable (503 + Retry-After), at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import SHOP_TOPOLOGY, connect
from shop_common.messaging.dlq import list_dead_letters, replay

from web_service.domain.errors import Refused, Unavailable

WORK_QUEUES = frozenset(spec.name for spec in SHOP_TOPOLOGY.queues)


class BrokerDeadLetters:
    """list/replay the DLQ of a work queue of SHOP_TOPOLOGY."""

    def __init__(self, amqp_url: str, *, name: str) -> None:
        self._url = amqp_url
        self._name = name
        self._connection: AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()

    async def _broker(self) -> AbstractRobustConnection:
        async with self._lock:
            if self._connection is None:
                try:
                    self._connection = await connect(self._url, attempts=1, name=self._name)
                except Exception as exc:
                    raise Unavailable("the message broker cannot be reached", 5.0) from exc
            return self._connection

    @staticmethod
    def _known(queue: str) -> str:
        work = queue.removesuffix(".dlq")
        if work not in WORK_QUEUES:
            raise Refused(404, f"no queue {queue!r} in the topology")
        return work

    async def browse(self, queue: str, limit: int) -> list[dict[str, object]]:
        """Up to limit dead letters of queue's DLQ, left in place."""
        work = self._known(queue)
        broker = await self._broker()
        try:
            letters = await list_dead_letters(broker, work, limit=limit)
        except Exception as exc:
            raise Unavailable("the dead letters cannot be read now", 5.0) from exc
        return [asdict(letter) for letter in letters]

    async def replay(self, queue: str, ids: list[str] | None) -> list[str]:
        """Republish the selected dead letters (all when ids is None); the replayed ids."""
        work = self._known(queue)
        broker = await self._broker()
        try:
            return await replay(broker, work, ids=ids)
        except Exception as exc:
            raise Unavailable("the dead letters cannot be replayed now", 5.0) from exc

    async def close(self) -> None:
        """Close the connection when one was opened."""
        if self._connection is not None:
            await self._connection.close()
