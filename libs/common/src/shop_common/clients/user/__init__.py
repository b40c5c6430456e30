"""Typed async client of the user service (gRPC).

One channel over every address with the round_robin policy, a deadline on every call,
retries on UNAVAILABLE by the gRPC service-config retry policy, keepalive pings. Errors are
raised as grpc.aio.AioRpcError with the status code intact (callers and breakers map codes).

The package: `records` (what the calls return), `channel` (target and service config),
`stream` (UpdateStream) and `client` (UserClient); every public name is re-exported here.
"""

from shop_common.clients.user.channel import SERVICE, target_for
from shop_common.clients.user.client import UserClient
from shop_common.clients.user.records import EVENT_NAMES, UserPage, UserRecord, UserUpdateEvent
from shop_common.clients.user.stream import UpdateStream

__all__ = [
    "EVENT_NAMES",
    "SERVICE",
    "UpdateStream",
    "UserClient",
    "UserPage",
    "UserRecord",
    "UserUpdateEvent",
    "target_for",
]
