"""Fan-out of user change notifications: ONE LISTEN connection per process, many subscribers.

Every instance sharing the database NOTIFYs on commit (unit_of_work.py); each instance's hub
LISTENs once and copies each event into the bounded queue of every local subscriber. When the
listen connection drops, the hub reconnects (pauses: UPDATE_HUB_RECONNECT, until stopped) and
ends every stream with `SubscriptionLost`, so a client knows it may have missed events and
resubscribes.

Exported: shop_user_subscriptions_active (streams attached now, every hub of the process) and
shop_user_subscriptions_dropped_total (streams ended because their subscriber fell behind).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from prometheus_client import Counter, Gauge
from shop_common.logging import get_logger
from shop_common.observability import untraced
from shop_common.resilience import RetryPolicy, backoff_delays

from user_service.adapters.notifications import NOTIFY_CHANNEL, parse_notification
from user_service.domain.errors import SubscriptionLost
from user_service.domain.model import UserUpdate

log = get_logger(__name__)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "shop_user_subscriptions_active", "SubscribeToUpdates streams attached to this process."
)
SUBSCRIPTIONS_DROPPED = Counter(
    "shop_user_subscriptions_dropped_total",
    "Update streams ended with UNAVAILABLE because their subscriber fell behind.",
)
# A constant 0.5 s between reconnects: a LISTEN connection is one per process and cheap.
UPDATE_HUB_RECONNECT = RetryPolicy(
    max_attempts=None, initial_backoff=0.5, multiplier=1.0, max_backoff=0.5, jitter=0.0
)


class _Subscriber:
    def __init__(self, user_ids: frozenset[int], max_queue: int) -> None:
        self.user_ids = user_ids
        self.queue: asyncio.Queue[UserUpdate | SubscriptionLost] = asyncio.Queue(max_queue)
        self.lost = False

    def offer(self, item: UserUpdate | SubscriptionLost) -> None:
        if self.lost:
            return
        if isinstance(item, UserUpdate) and self.user_ids and item.user.id not in self.user_ids:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A slow consumer must not hold memory or block others: end its stream instead.
            self.lost = True
            SUBSCRIPTIONS_DROPPED.inc()
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait(SubscriptionLost("subscriber fell behind"))


class UpdateHub:
    """Owns the LISTEN connection and the set of local subscribers."""

    def __init__(
        self, dsn: str, *, max_queue: int = 1000, reconnect: RetryPolicy = UPDATE_HUB_RECONNECT
    ) -> None:
        if reconnect.gives_up:
            raise ValueError("the hub reconnects until stopped: no attempt or time limit")
        self._dsn = dsn
        self._max_queue = max_queue
        self._reconnect = reconnect
        self._subscribers: set[_Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self.listening = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        """Streams currently attached (tests use it to prove nothing leaks)."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Start listening (returns once LISTEN is active, or keeps retrying in the background)."""
        self._task = asyncio.create_task(self._run(), name="user-update-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout=5)

    async def stop(self) -> None:
        """Stop listening, close the connection and end every stream (a second call does nothing)."""
        if self._task is None:  # never started, or already stopped
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._broadcast(SubscriptionLost("server shutting down"))

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            update = parse_notification(payload)
        except (ValueError, KeyError) as exc:
            log.warning("user_notification_dropped", error=str(exc))
            return
        self._broadcast(update)

    def _broadcast(self, item: UserUpdate | SubscriptionLost) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(item)

    async def _run(self) -> None:
        with untraced():  # the LISTEN connection is the hub's own: no trace per (re)connect
            await self._listen_forever()

    async def _listen_forever(self) -> None:
        pauses = backoff_delays(self._reconnect)
        while True:
            closed = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("update_hub_connect_failed", error=type(exc).__name__)
                await asyncio.sleep(next(pauses))
                continue
            self._connection = conn
            try:
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.listening.set()
                pauses = backoff_delays(self._reconnect)  # listening: the next outage starts afresh
                log.info("update_hub_listening", channel=NOTIFY_CHANNEL)
                await closed.wait()
                log.warning("update_hub_connection_lost")
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("update_hub_listen_failed", error=type(exc).__name__)
            finally:
                self.listening.clear()
                self._connection = None
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))
            self._broadcast(SubscriptionLost("update stream interrupted"))
            await asyncio.sleep(next(pauses))

    def subscribe(self, user_ids: frozenset[int]) -> Subscription:
        """Attach a subscriber now (events from this point on); close it with `close()`."""
        subscriber = _Subscriber(user_ids, self._max_queue)
        self._subscribers.add(subscriber)
        SUBSCRIPTIONS_ACTIVE.inc()
        return Subscription(self, subscriber)

    def _detach(self, subscriber: _Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            SUBSCRIPTIONS_ACTIVE.dec()


class Subscription:
    """An attached stream of updates: `async for update in subscription`, then `close()`."""

    def __init__(self, hub: UpdateHub, subscriber: _Subscriber) -> None:
        self._hub = hub
        self._subscriber = subscriber

    def close(self) -> None:
        """Detach from the hub (idempotent)."""
        self._hub._detach(self._subscriber)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> UserUpdate:
        item = await self._subscriber.queue.get()
        if isinstance(item, SubscriptionLost):
            raise item
        return item
