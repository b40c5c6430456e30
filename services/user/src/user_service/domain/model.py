"""The user entity, its validation rules, the event kinds it produces and the change a
subscriber sees (UserUpdate)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from user_service.domain.errors import InvalidArgument

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
MIN_PASSWORD_LENGTH = 8
# C0 controls and DEL: PostgreSQL text cannot hold NUL at all, and none of them belongs in an
# email, a name or a filter, so they are refused at the edge instead of failing in the driver.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class UserEventType(StrEnum):
    """The routing keys of the events a user change produces."""

    CREATED = "user.created"
    UPDATED = "user.updated"
    DELETED = "user.deleted"


@dataclass(frozen=True)
class User:
    """A stored user (never carries the password hash)."""

    id: int
    email: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


def has_control_characters(value: str) -> bool:
    """Whether value holds a control character (NUL included)."""
    return CONTROL_CHARACTERS.search(value) is not None


def normalize_email(email: str) -> str:
    """The email trimmed; InvalidArgument when it does not look like one."""
    email = email.strip()
    if (
        len(email) > MAX_EMAIL_LENGTH
        or has_control_characters(email)
        or not EMAIL_PATTERN.match(email)
    ):
        raise InvalidArgument("email is not a valid address")
    return email


def validate_name(name: str) -> str:
    """The name trimmed; InvalidArgument when empty or too long."""
    name = name.strip()
    if not name:
        raise InvalidArgument("name must not be empty")
    if has_control_characters(name):
        raise InvalidArgument("name must not contain control characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name


def validate_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Roles deduplicated and sorted; InvalidArgument for a malformed role."""
    for role in roles:
        if not ROLE_PATTERN.match(role):
            raise InvalidArgument(
                f"role {role!r} is not valid (lower-case letters, digits, _ or -)"
            )
    return tuple(sorted(set(roles)))


def validate_password(password: str) -> str:
    """The password as given; InvalidArgument when too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


@dataclass(frozen=True)
class UserUpdate:
    """One committed change as seen by subscribers (SubscribeToUpdates)."""

    event_type: UserEventType
    user: User
    occurred_at: datetime
