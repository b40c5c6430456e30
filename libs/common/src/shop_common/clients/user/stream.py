"""UpdateStream: a running SubscribeToUpdates call, read as UserUpdateEvents."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc

from shop_common.clients.user.records import UserUpdateEvent


class UpdateStream:
    """A running SubscribeToUpdates call: attach first (errors surface), then read events.

    The servicer sends initial metadata once its subscription is registered, so `attached()`
    returning means every change committed from then on reaches this stream. `cancel()`
    ends the RPC, and with it the server's subscription.
    """

    def __init__(self, call: Any) -> None:
        self._call = call

    async def attached(self) -> None:
        """Wait until the server has registered the subscription; AioRpcError if it refused."""
        await self._call.initial_metadata()
        if self._call.done():
            await self._call.read()  # raises the call's AioRpcError (returns EOF on OK)

    async def next_event(self) -> UserUpdateEvent | None:
        """The next event; None when the server ended the stream (AioRpcError on a failed end)."""
        message = await self._call.read()
        return None if message is grpc.aio.EOF else UserUpdateEvent.from_proto(message)

    async def events(self) -> AsyncGenerator[UserUpdateEvent, None]:
        """The events until the server ends the stream (AioRpcError on a failed end)."""
        while (event := await self.next_event()) is not None:
            yield event

    def cancel(self) -> None:
        """Cancel the RPC (idempotent)."""
        self._call.cancel()

    def done(self) -> bool:
        """Whether the RPC has ended (by the server, an error or cancel())."""
        return bool(self._call.done())
