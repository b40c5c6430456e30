"""More serializers for RedisCache (moved out of shop_common.cache.serializers): msgpack, and
pickle only on opt-in. Any object with dumps/loads fits `shop_common.cache.Serializer`."""

from __future__ import annotations

import pickle
from typing import Any

import msgpack

__all__ = ["MsgpackSerializer", "PickleSerializer"]


class MsgpackSerializer:
    """msgpack: smaller and faster than JSON for numeric-heavy values; same value types."""

    def dumps(self, value: Any) -> bytes:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]

    def loads(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False)


class PickleSerializer:
    """pickle: any Python object. UNSAFE: unpickling data an attacker can write runs their code.

    Only for a Redis that nothing untrusted can write to; construct it with
    `PickleSerializer(allow_unsafe=True)` to say you have checked that.
    """

    def __init__(self, *, allow_unsafe: bool = False) -> None:
        if not allow_unsafe:
            raise ValueError(
                "PickleSerializer executes code from the cache on load; "
                "pass allow_unsafe=True only when no untrusted party can write to this Redis"
            )

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - opt-in, documented as unsafe
