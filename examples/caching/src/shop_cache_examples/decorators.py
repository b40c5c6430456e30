"""`@cached`: cache-aside for coroutine functions and methods, keyed by qualname + arguments."""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import orjson

__all__ = ["CacheAside", "cached", "key_for"]

P = ParamSpec("P")
T = TypeVar("T")
_SELF_NAMES = frozenset({"self", "cls"})


class CacheAside(Protocol):
    """What @cached needs from a cache (MultiLevelCache has it)."""

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        negative_ttl: float | None = None,
    ) -> T | None: ...


def _argument_key(fn: Callable[..., Any], prefix: str, args: Any, kwargs: Any) -> str:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    items = [
        (name, value)
        for index, (name, value) in enumerate(bound.arguments.items())
        if not (index == 0 and name in _SELF_NAMES)
    ]
    try:
        payload = orjson.dumps(items, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise TypeError(
            f"@cached {prefix}: arguments must be JSON-able to build a stable key ({exc})"
        ) from exc
    return f"{prefix}:{hashlib.sha256(payload).hexdigest()[:32]}"


def key_for(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The cache key a @cached function uses for these arguments (to delete it)."""
    make_key = getattr(fn, "__cache_key__", None)
    if make_key is None:
        raise TypeError(f"{fn!r} is not decorated with @cached")
    return cast(str, make_key(*args, **kwargs))


def cached(
    cache: CacheAside | str,
    *,
    ttl: float | Callable[..., float] | None = None,
    negative_ttl: float | None = None,
    prefix: str | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Cache a coroutine function's results by its qualified name and arguments.

    Args:
        cache: the cache, or the name of the attribute holding it on `self` (for methods whose
            object gets its cache in the composition root).
        ttl: seconds, or a function of the call's arguments returning seconds (per-call TTL).
        negative_ttl: how long a None result is remembered (the cache's default when None).
        prefix: key prefix; module.qualname by default (stable across processes and restarts).

    `self`/`cls` are left out of the key; equal calls (f(1) and f(x=1)) share one key.
    """

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@cached needs a coroutine function, got {fn!r}")
        name = prefix or f"{fn.__module__}.{fn.__qualname__}"

        def make_key(*args: Any, **kwargs: Any) -> str:
            return _argument_key(fn, name, args, kwargs)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            target = cast(CacheAside, getattr(args[0], cache)) if isinstance(cache, str) else cache
            seconds = ttl(*args, **kwargs) if callable(ttl) else ttl
            result = await target.get_or_load(
                make_key(*args, **kwargs), lambda: fn(*args, **kwargs), seconds, negative_ttl
            )
            return cast(T, result)

        setattr(wrapper, "__cache_key__", make_key)  # noqa: B010 - read by key_for
        return wrapper

    return decorate
