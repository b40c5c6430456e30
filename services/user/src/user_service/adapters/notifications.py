"""The NOTIFY channel and payload of committed user changes: written by the unit of work in the
change's transaction (unit_of_work.py), read by every instance's update hub (update_hub.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from user_service.domain.model import User, UserEventType, UserUpdate

NOTIFY_CHANNEL = "user_updates"


def notification(event_type: UserEventType, user: User) -> str:
    """The NOTIFY payload subscribers decode (well under PostgreSQL's 8000-byte limit)."""
    return json.dumps(
        {
            "type": event_type.value,
            "at": datetime.now(UTC).isoformat(),
            "user": {
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "roles": list(user.roles),
                "created_at": user.created_at.isoformat(),
                "updated_at": user.updated_at.isoformat(),
            },
        }
    )


def parse_notification(payload: str) -> UserUpdate:
    """Decode the JSON NOTIFY payload written by notification()."""
    body: dict[str, Any] = json.loads(payload)
    raw = body["user"]
    user = User(
        id=int(raw["id"]),
        email=raw["email"],
        name=raw["name"],
        roles=tuple(raw["roles"]),
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
    )
    return UserUpdate(UserEventType(body["type"]), user, datetime.fromisoformat(body["at"]))
