"""Typed async client of the user service (gRPC).

One channel over every address with the round_robin policy, a deadline on every call,
retries on UNAVAILABLE by the gRPC service-config retry policy, keepalive pings. Errors are
raised as grpc.aio.AioRpcError with the status code intact (callers and breakers map codes).
"""

# The `timeout` parameters are gRPC deadlines sent to the server (the contract's name for them).
# ruff: noqa: ASYNC109

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

SERVICE = "shop.user.v1.UserService"
EVENT_NAMES = {
    user_pb2.USER_EVENT_TYPE_CREATED: "user.created",
    user_pb2.USER_EVENT_TYPE_UPDATED: "user.updated",
    user_pb2.USER_EVENT_TYPE_DELETED: "user.deleted",
}


def _service_config(max_attempts: int) -> str:
    # Unary calls only: a retried stream could replay messages the caller already saw.
    unary = ["GetUser", "CreateUser", "UpdateUser", "DeleteUser", "Authenticate"]
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{"service": SERVICE, "method": m} for m in unary],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def target_for(addresses: Sequence[str]) -> str:
    """A gRPC target for round robin over host:port addresses.

    One address → `dns:///host:port` (every A record is balanced); several → an `ipv4:` list,
    names resolved once here (at start-up, e.g. `user-1:50051,user-2:50051` in compose).
    """
    if not addresses:
        raise ValueError("at least one user service address is needed")
    if len(addresses) == 1 and not _is_ipv4(addresses[0].rsplit(":", 1)[0]):
        return f"dns:///{addresses[0]}"
    resolved = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"address {address!r} must be host:port")
        ip = host if _is_ipv4(host) else socket.gethostbyname(host)
        resolved.append(f"{ip}:{port}")
    return "ipv4:" + ",".join(resolved)


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def _datetime(stamp: Any) -> datetime:
    return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC)


@dataclass(frozen=True)
class UserRecord:
    """A user as the client sees it (JSON-friendly for caches)."""

    id: int
    email: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, user: user_pb2.User) -> UserRecord:
        """From the protobuf message."""
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            roles=tuple(user.roles),
            created_at=_datetime(user.created_at),
            updated_at=_datetime(user.updated_at),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "roles": list(self.roles),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserRecord:
        """Inverse of to_dict."""
        return cls(
            id=int(data["id"]),
            email=data["email"],
            name=data["name"],
            roles=tuple(data["roles"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
        )


@dataclass(frozen=True)
class UserUpdateEvent:
    """One event from SubscribeToUpdates."""

    event_type: str
    user_id: int
    user: UserRecord | None
    occurred_at: datetime

    @classmethod
    def from_proto(cls, message: user_pb2.SubscribeToUpdatesResponse) -> UserUpdateEvent:
        """From the protobuf message (no user for a deletion)."""
        deleted = message.event_type == user_pb2.USER_EVENT_TYPE_DELETED
        return cls(
            event_type=EVENT_NAMES.get(message.event_type, "unknown"),
            user_id=message.user_id,
            user=None if deleted else UserRecord.from_proto(message.user),
            occurred_at=_datetime(message.occurred_at),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "event_type": self.event_type,
            "user_id": self.user_id,
            "user": None if self.user is None else self.user.to_dict(),
            "occurred_at": self.occurred_at.isoformat(),
        }


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


@dataclass(frozen=True)
class UserPage:
    """One ListUsers page."""

    users: list[UserRecord]
    next_page_token: str


class UserClient:
    """Async client of the user service; one channel, round-robin over `addresses`."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        default_timeout: float = 2.0,
        max_attempts: int = 4,
        keepalive_ms: int = 30_000,
        max_reconnect_backoff_ms: int = 5_000,
    ) -> None:
        self.default_timeout = default_timeout
        self._channel = grpc.aio.insecure_channel(
            target_for(addresses),
            options=[
                ("grpc.service_config", _service_config(max_attempts)),
                ("grpc.enable_retries", 1),
                ("grpc.keepalive_time_ms", keepalive_ms),
                # gRPC's default lets the wait between reconnect attempts grow to 120 s, so a
                # caller could take two minutes to notice that the service is back. Capped here,
                # recovery after an outage of any length takes seconds, without a restart.
                ("grpc.max_reconnect_backoff_ms", max_reconnect_backoff_ms),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        self._stub = user_pb2_grpc.UserServiceStub(self._channel)

    def _metadata(self, token: str | None, request_id: str | None) -> tuple[tuple[str, str], ...]:
        metadata = [("x-request-id", request_id or uuid.uuid4().hex)]
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        return tuple(metadata)

    def _timeout(self, timeout: float | None) -> float:
        return self.default_timeout if timeout is None else timeout

    async def get_user(
        self,
        user_id: int,
        *,
        token: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> UserRecord:
        """GetUser."""
        response = await self._stub.GetUser(
            user_pb2.GetUserRequest(id=user_id),
            metadata=self._metadata(token, request_id),
            timeout=self._timeout(timeout),
        )
        return UserRecord.from_proto(response.user)

    async def create_user(
        self,
        email: str,
        name: str,
        password: str,
        *,
        roles: Sequence[str] = (),
        token: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> UserRecord:
        """CreateUser."""
        response = await self._stub.CreateUser(
            user_pb2.CreateUserRequest(
                email=email, name=name, roles=list(roles), password=password
            ),
            metadata=self._metadata(token, request_id),
            timeout=self._timeout(timeout),
        )
        return UserRecord.from_proto(response.user)

    async def update_user(
        self,
        user_id: int,
        fields: dict[str, Any],
        paths: list[str],
        *,
        token: str | None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> UserRecord:
        """UpdateUser with exactly `paths` (fields holds their values; "password" too)."""
        user = user_pb2.User(
            id=user_id,
            email=fields.get("email", ""),
            name=fields.get("name", ""),
            roles=list(fields.get("roles", ())),
        )
        response = await self._stub.UpdateUser(
            user_pb2.UpdateUserRequest(
                user=user, update_mask=FieldMask(paths=paths), password=fields.get("password", "")
            ),
            metadata=self._metadata(token, request_id),
            timeout=self._timeout(timeout),
        )
        return UserRecord.from_proto(response.user)

    async def delete_user(
        self,
        user_id: int,
        *,
        token: str | None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> None:
        """DeleteUser."""
        await self._stub.DeleteUser(
            user_pb2.DeleteUserRequest(id=user_id),
            metadata=self._metadata(token, request_id),
            timeout=self._timeout(timeout),
        )

    async def list_page(
        self,
        *,
        token: str | None,
        page_size: int = 0,
        page_token: str = "",
        filter: str = "",
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> UserPage:
        """One ListUsers page and the next page token ("" at the end)."""
        call = self._stub.ListUsers(
            user_pb2.ListUsersRequest(page_size=page_size, page_token=page_token, filter=filter),
            metadata=self._metadata(token, request_id),
            timeout=self._timeout(timeout),
        )
        users = [UserRecord.from_proto(message.user) async for message in call]
        trailer = dict(await call.trailing_metadata() or ())
        return UserPage(users, str(trailer.get("next-page-token", "")))

    async def list_users(
        self,
        *,
        token: str | None,
        page_size: int = 0,
        filter: str = "",
        timeout: float | None = None,
    ) -> AsyncGenerator[UserRecord, None]:
        """Every matching user, page after page (each page with its own deadline)."""
        page_token = ""
        while True:
            page = await self.list_page(
                token=token,
                page_size=page_size,
                page_token=page_token,
                filter=filter,
                timeout=timeout,
            )
            for user in page.users:
                yield user
            if not page.next_page_token:
                return
            page_token = page.next_page_token

    def open_updates(
        self,
        user_ids: Sequence[int] = (),
        *,
        token: str | None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> UpdateStream:
        """Start SubscribeToUpdates for user_ids (empty = all); no deadline unless `timeout`."""
        return UpdateStream(
            self._stub.SubscribeToUpdates(
                user_pb2.SubscribeToUpdatesRequest(user_ids=list(user_ids)),
                metadata=self._metadata(token, request_id),
                timeout=timeout,
            )
        )

    async def subscribe(
        self, user_ids: Sequence[int] = (), *, token: str | None, timeout: float | None = None
    ) -> AsyncGenerator[UserUpdateEvent, None]:
        """Events for user_ids (empty = all); no deadline unless `timeout` is given."""
        stream = self.open_updates(user_ids, token=token, timeout=timeout)
        try:
            async for event in stream.events():
                yield event
        finally:
            stream.cancel()

    async def authenticate(
        self, email: str, password: str, *, timeout: float | None = None
    ) -> UserRecord:
        """Authenticate (no token needed)."""
        response = await self._stub.Authenticate(
            user_pb2.AuthenticateRequest(email=email, password=password),
            metadata=self._metadata(None, None),
            timeout=self._timeout(timeout),
        )
        return UserRecord.from_proto(response.user)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
