"""The records the user client returns: UserRecord, UserUpdateEvent, UserPage (from protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shop_protos.user.v1 import user_pb2

EVENT_NAMES = {
    user_pb2.USER_EVENT_TYPE_CREATED: "user.created",
    user_pb2.USER_EVENT_TYPE_UPDATED: "user.updated",
    user_pb2.USER_EVENT_TYPE_DELETED: "user.deleted",
}


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


@dataclass(frozen=True)
class UserPage:
    """One ListUsers page."""

    users: list[UserRecord]
    next_page_token: str
