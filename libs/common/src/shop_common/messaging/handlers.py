"""Declarative, typed message handlers: one registry per queue, dispatching on the event type.

    payment_results = Handlers[OrderService]("order.payment-results")

    @payment_results.handles("payment.succeeded")
    async def on_succeeded(event: PaymentSucceeded, service: OrderService, msg: Incoming) -> bool:
        return await service.pay(msg.envelope, event.order_id)

    consumer = Consumer(connection, "order.payment-results", payment_results.bind(service))

The payload model is the annotation of the handler's first parameter; it must be the model that
shop_common.messaging.events registers for the event type. `bind(deps)` gives the Consumer its
handler, which:

- dispatches on `envelope.event_type`; a type nobody handles or ignores is a PermanentError
  (straight to the DLQ: waiting will not teach this consumer a new event);
- validates the payload into the model; a ValidationError is a PermanentError;
- turns the exceptions named in `retryable` into RetryableError (the next delay tier);
- logs `message_handled` with the event, the attempt and the handler's result (its effect).

`bindings()` derives what the queue must be bound to from the registered types, and
`check(topology)` fails fast when the declared topology routes a type that no handler takes, or
misses one that a handler takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from shop_common.logging import get_logger
from shop_common.messaging.events import PAYLOAD_TYPES, EventEnvelope
from shop_common.messaging.outcomes import DeliveryInfo, Handler, PermanentError, RetryableError
from shop_common.messaging.topology import Binding, Topology

D = TypeVar("D")
P = TypeVar("P", bound=BaseModel)
_log = get_logger(__name__)

# The exchange each event family is published to (DESIGN.md: one exchange per producing service).
EXCHANGE_OF_FAMILY = {
    "user": "users",
    "order": "orders",
    "payment": "payments",
    "product": "catalog",
    "stock": "catalog",
}


@dataclass(frozen=True, slots=True)
class Incoming:
    """The delivered message besides its typed payload: envelope (ids, causation) and delivery."""

    envelope: EventEnvelope
    delivery: DeliveryInfo


TypedHandler = Callable[[Any, D, Incoming], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class _Route(Generic[D]):
    model: type[BaseModel]
    handler: TypedHandler[D]


def exchange_of(event_type: str) -> str:
    """The exchange an event type is published to (`payment.succeeded` → `payments`)."""
    family = event_type.partition(".")[0]
    try:
        return EXCHANGE_OF_FAMILY[family]
    except KeyError:
        raise ValueError(f"no exchange publishes {event_type!r}") from None


def _payload_model(handler: Callable[..., Any], event_type: str) -> type[BaseModel]:
    parameters = list(inspect.signature(handler).parameters)
    if len(parameters) != 3:
        raise TypeError(f"{handler.__qualname__} must take (event, deps, incoming)")
    model = get_type_hints(handler).get(parameters[0])
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{handler.__qualname__}: annotate its first parameter with the payload")
    expected = PAYLOAD_TYPES.get(event_type)
    if expected is not None and model is not expected:
        raise TypeError(f"{event_type} carries {expected.__name__}, not {model.__name__}")
    return model


class Handlers(Generic[D]):
    """The handlers of one queue, by event type."""

    def __init__(self, queue: str, *, retryable: tuple[type[BaseException], ...] = ()) -> None:
        self.queue = queue
        self._retryable = retryable
        self._routes: dict[str, _Route[D]] = {}
        self._ignored: set[str] = set()

    def handles(self, *event_types: str) -> Callable[[TypedHandler[D]], TypedHandler[D]]:
        """Register the decorated coroutine for these event types (each once per queue)."""

        def register(handler: TypedHandler[D]) -> TypedHandler[D]:
            for event_type in event_types:
                self._claim(event_type)
                self._routes[event_type] = _Route(_payload_model(handler, event_type), handler)
            return handler

        return register

    def ignores(self, *event_types: str) -> None:
        """Event types this queue receives and acknowledges without an effect."""
        for event_type in event_types:
            self._claim(event_type)
            self._ignored.add(event_type)

    def _claim(self, event_type: str) -> None:
        exchange_of(event_type)  # a known family, or ValueError now
        if event_type in self._routes or event_type in self._ignored:
            raise ValueError(f"{self.queue}: {event_type} is registered twice")

    @property
    def event_types(self) -> frozenset[str]:
        """Every type the queue takes (handled or ignored)."""
        return frozenset(self._routes) | frozenset(self._ignored)

    def bindings(self) -> tuple[Binding, ...]:
        """One binding per event type, on the exchange that publishes it."""
        return tuple(Binding(exchange_of(t), t) for t in sorted(self.event_types))

    def check(self, topology: Topology) -> None:
        """ValueError unless the topology routes exactly this registry's types to the queue."""
        spec = topology.queue(self.queue)
        routed = {t for t in _known_types() if any(_matches(b, t) for b in spec.bindings)}
        missing, extra = self.event_types - routed, routed - self.event_types
        if missing or extra:
            raise ValueError(
                f"{self.queue}: the topology misses {sorted(missing)} and routes "
                f"{sorted(extra)} that no handler takes"
            )

    def bind(self, deps: D) -> Handler:
        """The Consumer handler, with deps passed to every typed handler."""
        routes, ignored, retryable = dict(self._routes), frozenset(self._ignored), self._retryable

        async def handle(envelope: EventEnvelope, delivery: DeliveryInfo) -> None:
            event_type = envelope.event_type
            route = routes.get(event_type)
            if route is None:
                if event_type in ignored:
                    return
                raise PermanentError(f"{delivery.queue} takes no {event_type!r} events")
            try:
                event = route.model.model_validate(envelope.payload)
            except ValidationError as exc:
                raise PermanentError(f"invalid {event_type} payload: {exc}") from exc
            try:
                effect = await route.handler(event, deps, Incoming(envelope, delivery))
            except retryable as exc:
                raise RetryableError(str(exc)) from exc
            _log.info(
                "message_handled",
                queue=delivery.queue,
                event_id=str(envelope.event_id),
                event_type=event_type,
                attempt=delivery.attempt,
                effect=effect,
            )

        return handle


def _known_types() -> frozenset[str]:
    return frozenset(PAYLOAD_TYPES)


def _matches(binding: Binding, event_type: str) -> bool:
    """AMQP topic matching of one binding against an event type (`*` one word, `#` any)."""
    if binding.exchange != exchange_of(event_type):
        return False
    pattern, words = binding.routing_key.split("."), event_type.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(words)
        if pattern[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(words) + 1))
        return j < len(words) and pattern[i] in ("*", words[j]) and match(i + 1, j + 1)

    return match(0, 0)


__all__ = ("EXCHANGE_OF_FAMILY", "Handlers", "Incoming", "exchange_of")
