"""UserClient: the user service's calls over one round-robin channel, with deadlines."""

# The `timeout` parameters are gRPC deadlines sent to the server (the contract's name for them).
# ruff: noqa: ASYNC109

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

from shop_common.clients.user.channel import service_config, target_for
from shop_common.clients.user.records import UserPage, UserRecord, UserUpdateEvent
from shop_common.clients.user.stream import UpdateStream


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
                ("grpc.service_config", service_config(max_attempts)),
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
