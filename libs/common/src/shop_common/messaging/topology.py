"""Exchanges, queues, bindings, delay tiers and DLQs as data, declared idempotently."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

# Retries go through the default exchange straight to one queue, so a retry of a message that
# was fanned out to several queues (pub/sub) is seen again by the failing consumer only.
DEFAULT_EXCHANGE = ""
DEFAULT_RETRY_DELAYS_MS: tuple[int, ...] = (1_000, 5_000, 25_000, 125_000)


def exponential_delays(first_ms: int, factor: int, tiers: int) -> tuple[int, ...]:
    """Delay tiers first_ms, first_ms*factor, ... (one queue per tier)."""
    if first_ms <= 0 or factor < 1 or tiers < 1:
        raise ValueError("need first_ms > 0, factor >= 1, tiers >= 1")
    return tuple(first_ms * factor**n for n in range(tiers))


@dataclass(frozen=True)
class ExchangeSpec:
    """A durable exchange (topic unless stated)."""

    name: str
    type: aio_pika.ExchangeType = aio_pika.ExchangeType.TOPIC


@dataclass(frozen=True)
class Binding:
    """Route messages of exchange matching routing_key (topic pattern) to the queue."""

    exchange: str
    routing_key: str


@dataclass(frozen=True)
class QueueSpec:
    """A durable work queue with its delay-tier queues `<name>.retry.<n>` and `<name>.dlq`."""

    name: str
    bindings: tuple[Binding, ...]
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    max_priority: int | None = None
    # A tap is a bounded subscription point nobody must drain (no tiers, no DLQ): it makes events
    # without a consumer yet routable, so mandatory publishing still catches real misroutes.
    tap: bool = False
    tap_max_length: int = 100_000
    tap_ttl_ms: int = 7 * 24 * 3600 * 1000

    def retry_queue(self, tier: int) -> str:
        """Name of the delay queue of tier (0-based)."""
        return f"{self.name}.retry.{tier}"

    @property
    def dlq(self) -> str:
        """Name of the dead-letter queue."""
        return f"{self.name}.dlq"

    def work_arguments(self) -> dict[str, Any]:
        """Work-queue arguments: a reject without requeue dead-letters to the DLQ, never drops."""
        if self.tap:
            return {"x-max-length": self.tap_max_length, "x-message-ttl": self.tap_ttl_ms}
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": DEFAULT_EXCHANGE,
            "x-dead-letter-routing-key": self.dlq,
        }
        if self.max_priority is not None:
            arguments["x-max-priority"] = self.max_priority
        return arguments

    def retry_arguments(self, tier: int) -> dict[str, Any]:
        """Delay-queue arguments: queue-level TTL, then dead-letter back to the work queue."""
        arguments: dict[str, Any] = {
            "x-message-ttl": self.retry_delays_ms[tier],
            "x-dead-letter-exchange": DEFAULT_EXCHANGE,
            "x-dead-letter-routing-key": self.name,
        }
        if self.max_priority is not None:
            arguments["x-max-priority"] = self.max_priority
        return arguments


@dataclass(frozen=True)
class RetiredBinding:
    """A binding an earlier topology declared and this one must not have: `declare` removes it
    from a broker that still holds it (a no-op on one that never did)."""

    queue: str
    binding: Binding


@dataclass(frozen=True)
class Topology:
    """Everything one system declares; every service declares all of it (idempotent)."""

    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    # Default per-routing-key priority for queues declared with x-max-priority.
    priorities: Mapping[str, int] = field(default_factory=dict)
    # Bindings of earlier versions, unbound at every declare (declaring only adds).
    retired: tuple[RetiredBinding, ...] = ()

    def queue(self, name: str) -> QueueSpec:
        """The queue spec called name (KeyError when absent)."""
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(f"queue {name!r} is not in the topology")

    def only(self, queue_name: str) -> Topology:
        """The part of the topology one queue needs: its spec and the exchanges it binds."""
        spec = self.queue(queue_name)
        bound = {binding.exchange for binding in spec.bindings}
        exchanges = tuple(ex for ex in self.exchanges if ex.name in bound)
        retired = tuple(r for r in self.retired if r.queue == queue_name)
        return Topology(
            exchanges=exchanges, queues=(spec,), priorities=self.priorities, retired=retired
        )

    def with_retry_delays(self, delays_ms: tuple[int, ...]) -> Topology:
        """The same topology with other delay tiers on every work queue (tests use short ones).

        Every process of one vhost must declare the same tiers (queue arguments must match).
        """
        if not delays_ms or any(delay <= 0 for delay in delays_ms):
            raise ValueError("need at least one delay tier, each > 0 ms")
        queues = tuple(
            spec if spec.tap else replace(spec, retry_delays_ms=tuple(delays_ms))
            for spec in self.queues
        )
        return replace(self, queues=queues)

    def monitored_queues(self, consumed: Iterable[str]) -> tuple[str, ...]:
        """What a consumer of `consumed` watches: each work queue, its retry tiers, its DLQ."""
        names: list[str] = []
        for name in consumed:
            spec = self.queue(name)
            names.append(spec.name)
            if not spec.tap:
                names += [spec.retry_queue(tier) for tier in range(len(spec.retry_delays_ms))]
                names.append(spec.dlq)
        return tuple(names)

    def queue_of_dlq(self, dlq: str) -> QueueSpec:
        """The work queue whose DLQ is dlq."""
        for spec in self.queues:
            if spec.dlq == dlq:
                return spec
        raise KeyError(f"{dlq!r} is not the DLQ of a queue in the topology")


PRIORITY_REFUND = 9
PRIORITY_NORMAL = 0

SHOP_TOPOLOGY = Topology(
    exchanges=(
        ExchangeSpec("users"),
        ExchangeSpec("orders"),
        ExchangeSpec("payments"),
        ExchangeSpec("catalog"),
    ),
    queues=(
        QueueSpec("order.user-changes", (Binding("users", "user.*"),)),
        # The order service's price cache: a changed price is evicted (next order pays it).
        QueueSpec("order.catalog-changes", (Binding("catalog", "product.price_changed"),)),
        QueueSpec("gateway.user-changes", (Binding("users", "user.*"),)),
        # The gateway's response cache of the public catalog: evicted on a price or stock change.
        QueueSpec(
            "gateway.catalog-changes",
            (Binding("catalog", "product.price_changed"), Binding("catalog", "stock.changed")),
        ),
        # The saga's stock side: reserve on order.created, confirm on order.paid, release on
        # order.payment_failed and order.cancelled.
        QueueSpec(
            "catalog.order-events",
            (
                Binding("orders", "order.created"),
                Binding("orders", "order.paid"),
                Binding("orders", "order.payment_failed"),
                Binding("orders", "order.cancelled"),
            ),
        ),
        # The payment side: charge once the stock is held, refund on a cancellation.
        QueueSpec(
            "payment.order-events",
            (Binding("catalog", "stock.reserved"), Binding("orders", "order.cancelled")),
            max_priority=10,
        ),
        # The saga's results for the order: payment.*, a stock rejection or release.
        QueueSpec(
            "order.payment-results",
            (
                Binding("payments", "payment.*"),
                Binding("catalog", "stock.rejected"),
                Binding("catalog", "stock.released"),
            ),
        ),
        QueueSpec(
            "order.status-events",
            (
                Binding("orders", "order.paid"),
                Binding("orders", "order.payment_failed"),
                Binding("orders", "order.refunded"),
                Binding("orders", "order.rejected"),
            ),
            tap=True,
        ),
    ),
    # A cancellation may carry a refund: it overtakes the queue of new charges.
    priorities={"order.cancelled": PRIORITY_REFUND},
    # Before the catalog joined the saga, the payment service charged on order.created: a
    # broker declared by that version still routes it there (it would charge unreserved orders).
    retired=(RetiredBinding("payment.order-events", Binding("orders", "order.created")),),
)


async def declare(channel: AbstractChannel, topology: Topology) -> dict[str, AbstractQueue]:
    """Declare exchanges, queues (work, delay tiers, DLQ) and bindings; safe to repeat."""
    exchanges = {
        spec.name: await channel.declare_exchange(spec.name, spec.type, durable=True)
        for spec in topology.exchanges
    }
    queues: dict[str, AbstractQueue] = {}
    for spec in topology.queues:
        if not spec.tap:
            queues[spec.dlq] = await channel.declare_queue(spec.dlq, durable=True)
        for tier in range(0 if spec.tap else len(spec.retry_delays_ms)):
            name = spec.retry_queue(tier)
            queues[name] = await channel.declare_queue(
                name, durable=True, arguments=spec.retry_arguments(tier)
            )
        work = await channel.declare_queue(spec.name, durable=True, arguments=spec.work_arguments())
        for binding in spec.bindings:
            await work.bind(exchanges[binding.exchange], binding.routing_key)
        queues[spec.name] = work
    for retired in topology.retired:
        if (
            retired.queue in queues
            and retired.binding not in topology.queue(retired.queue).bindings
        ):
            # RabbitMQ answers unbind-ok for a binding it does not hold: safe to repeat.
            await queues[retired.queue].unbind(
                retired.binding.exchange, retired.binding.routing_key
            )
    return queues
