"""Value serializers for Redis-backed caches: the protocol and JSON (RedisCache's default)."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

__all__ = ["JsonSerializer", "Serializer"]


class Serializer(Protocol):
    """Turns a value into bytes and back; never returns empty bytes (reserved for negatives)."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """JSON through orjson: dicts, lists, str, numbers, bool, None, datetimes (as ISO strings)."""

    def dumps(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(self, data: bytes) -> Any:
        return orjson.loads(data)
