"""The UserService servicer: protobuf in and out, everything else in the service layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from shop_common.auth import Principal
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

from user_service.domain.errors import SubscriptionLost, Unauthenticated
from user_service.domain.model import User, UserEventType
from user_service.entrypoints.grpc.context import current_principal, current_request_id
from user_service.service_layer.ports import UpdateFeed
from user_service.service_layer.users import UserService

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type information)
NEXT_PAGE_TOKEN_KEY = "next-page-token"
_EVENT_TYPES = {
    UserEventType.CREATED: user_pb2.USER_EVENT_TYPE_CREATED,
    UserEventType.UPDATED: user_pb2.USER_EVENT_TYPE_UPDATED,
    UserEventType.DELETED: user_pb2.USER_EVENT_TYPE_DELETED,
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _set_timestamp(target: Timestamp, value: datetime) -> None:
    # Exact integer arithmetic on the timedelta; Timestamp.FromDatetime goes through
    # utctimetuple() and calendar.timegm, a third of the GetUser servicer's own time.
    delta = value - _EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def _timestamp(value: datetime) -> Timestamp:
    message = Timestamp()
    _set_timestamp(message, value)
    return message


def _fill_user(message: user_pb2.User, user: User) -> None:
    """Set the fields of an empty protobuf User in place (never a password or hash): building
    it inside its parent saves the copy a `Parent(user=...)` constructor makes of it."""
    message.id = user.id
    message.email = user.email
    message.name = user.name
    if user.roles:
        message.roles.extend(user.roles)
    _set_timestamp(message.created_at, user.created_at)
    _set_timestamp(message.updated_at, user.updated_at)


def user_message(user: User) -> user_pb2.User:
    """The protobuf User (never a password or hash)."""
    message = user_pb2.User()
    _fill_user(message, user)
    return message


def _caller() -> Principal:
    principal = current_principal.get()
    if principal is None:  # only reachable if the auth interceptor was left out
        raise Unauthenticated("missing bearer token")
    return principal


class UserServicer(user_pb2_grpc.UserServiceServicer):
    """gRPC edge of the user service."""

    def __init__(self, service: UserService, hub: UpdateFeed) -> None:
        self.service = service
        self.hub = hub

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: Context
    ) -> user_pb2.GetUserResponse:
        user = await self.service.get(_caller(), request.id)
        response = user_pb2.GetUserResponse()
        _fill_user(response.user, user)
        return response

    async def CreateUser(
        self, request: user_pb2.CreateUserRequest, context: Context
    ) -> user_pb2.CreateUserResponse:
        user = await self.service.create(
            _caller(),
            email=request.email,
            name=request.name,
            roles=list(request.roles),
            password=request.password,
            request_id=current_request_id.get(),
        )
        return user_pb2.CreateUserResponse(user=user_message(user))

    async def UpdateUser(
        self, request: user_pb2.UpdateUserRequest, context: Context
    ) -> user_pb2.UpdateUserResponse:
        user = await self.service.update(
            _caller(),
            request.user.id,
            paths=list(request.update_mask.paths),
            email=request.user.email,
            name=request.user.name,
            roles=list(request.user.roles),
            password=request.password,
            request_id=current_request_id.get(),
        )
        return user_pb2.UpdateUserResponse(user=user_message(user))

    async def DeleteUser(
        self, request: user_pb2.DeleteUserRequest, context: Context
    ) -> user_pb2.DeleteUserResponse:
        await self.service.delete(_caller(), request.id, request_id=current_request_id.get())
        return user_pb2.DeleteUserResponse()

    async def ListUsers(
        self, request: user_pb2.ListUsersRequest, context: Context
    ) -> AsyncIterator[user_pb2.ListUsersResponse]:
        page = await self.service.list_page(
            _caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
        )
        context.set_trailing_metadata(((NEXT_PAGE_TOKEN_KEY, page.next_page_token),))
        for index, user in enumerate(page.users):
            last = index == len(page.users) - 1
            yield user_pb2.ListUsersResponse(
                user=user_message(user), next_page_token=page.next_page_token if last else ""
            )

    async def SubscribeToUpdates(
        self, request: user_pb2.SubscribeToUpdatesRequest, context: Context
    ) -> AsyncIterator[user_pb2.SubscribeToUpdatesResponse]:
        self.service.may_watch(_caller(), list(request.user_ids))
        subscription = self.hub.subscribe(frozenset(request.user_ids))
        try:
            # Initial metadata tells the client the subscription is attached: events from now on.
            await context.send_initial_metadata((("subscribed", "1"),))
            async for update in subscription:
                user = (
                    user_pb2.User(id=update.user.id)
                    if update.event_type is UserEventType.DELETED
                    else user_message(update.user)
                )
                yield user_pb2.SubscribeToUpdatesResponse(
                    user_id=update.user.id,
                    event_type=_EVENT_TYPES[update.event_type],
                    user=user,
                    occurred_at=_timestamp(update.occurred_at),
                )
        except SubscriptionLost as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; resubscribe")
        finally:
            subscription.close()

    async def Authenticate(
        self, request: user_pb2.AuthenticateRequest, context: Context
    ) -> user_pb2.AuthenticateResponse:
        user = await self.service.authenticate(request.email, request.password)
        return user_pb2.AuthenticateResponse(user=user_message(user))
