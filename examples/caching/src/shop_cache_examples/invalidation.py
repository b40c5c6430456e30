"""Event-driven invalidation: event name → key templates filled from the event's payload."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shop_common.cache.levels import LayeredCache
from shop_common.logging import get_logger

if TYPE_CHECKING:
    from shop_common.messaging.events import EventEnvelope

__all__ = ["CacheInvalidator", "InvalidationError"]

_log = get_logger(__name__)


class InvalidationError(ValueError):
    """An event lacks a field one of its key templates needs."""


class CacheInvalidator:
    """Deletes the keys an event makes stale, in L2 and in every instance's L1.

    `CacheInvalidator(cache, {"user.updated": ["user:{user_id}", "orders:user:{user_id}:*"]})`:
    plain templates are deleted by key; templates with `*` are glob patterns, deleted with
    SCAN on every primary (never KEYS).
    """

    def __init__(self, cache: LayeredCache, rules: Mapping[str, Sequence[str]] | None = None):
        self.cache = cache
        self.rules: dict[str, list[str]] = {}
        for event, templates in (rules or {}).items():
            self.on(event, *templates)

    def on(self, event: str, *templates: str) -> None:
        """Add key templates for an event name (str.format fields from the payload)."""
        self.rules.setdefault(event, []).extend(templates)

    def keys_for(self, event: str, payload: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(keys, patterns) an event invalidates; InvalidationError if a field is missing."""
        keys: list[str] = []
        patterns: list[str] = []
        for template in self.rules.get(event, ()):
            try:
                filled = template.format_map(payload)
            except (KeyError, IndexError) as exc:
                raise InvalidationError(
                    f"event {event!r} has no field {exc} for key template {template!r}"
                ) from exc
            (patterns if "*" in filled else keys).append(filled)
        return keys, patterns

    async def handle(self, event: str, payload: Mapping[str, Any]) -> list[str]:
        """Invalidate what the event names; return the keys and patterns invalidated."""
        keys, patterns = self.keys_for(event, payload)
        if keys:
            await self.cache.delete(*keys)
        for pattern in patterns:
            await self.cache.invalidate_pattern(pattern)
        if keys or patterns:
            _log.debug("cache_invalidated", cache=self.cache.name, event_type=event, keys=keys)
        return keys + patterns

    async def handle_envelope(self, envelope: EventEnvelope) -> list[str]:
        """handle() for a messaging envelope (a consumer's handler can call this)."""
        return await self.handle(envelope.event_type, envelope.payload)
