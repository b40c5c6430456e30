"""Wrapping a grpc.aio method handler's behaviour, for unary and server-streaming methods."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Around = Callable[[Callable[[], Awaitable[None]], str, Any], Awaitable[None]]


def wrap_handler(
    handler: grpc.RpcMethodHandler, method: str, around: Around
) -> grpc.RpcMethodHandler:
    """A handler running `around(call, method, context)` around each call of `handler`.

    `around` runs in the call's own task, so contextvars it sets are seen by the servicer.
    """
    if handler.unary_unary is not None:
        inner_unary = handler.unary_unary

        async def unary(request: Any, context: Any) -> Any:
            result: list[Any] = []

            async def call() -> None:
                result.append(await inner_unary(request, context))

            await around(call, method, context)
            return result[0] if result else None

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> None:
            # The stream writes through context, so `around` wraps the whole stream.
            async def call() -> None:
                produced = inner_stream(request, context)
                if inspect.isawaitable(produced):  # an inner wrapper that writes itself
                    await produced
                    return
                async for message in produced:
                    await context.write(message)

            await around(call, method, context)

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler
