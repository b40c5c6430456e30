"""JSON shapes of the transcoded user API (request and response bodies, with OpenAPI examples)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

# Bounds only keep payloads small; the user service owns the real rules (→ 400 with its message).
# Control characters are refused here: PostgreSQL cannot store NUL, and a stored name or email
# with control characters would end up in logs and other clients' screens.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Email = Annotated[
    str, Field(min_length=1, max_length=320, pattern=PRINTABLE, examples=["ada@example.com"])
]
Name = Annotated[
    str, Field(min_length=1, max_length=200, pattern=PRINTABLE, examples=["Ada Lovelace"])
]
Password = Annotated[str, Field(min_length=1, max_length=1024, examples=["correct horse battery"])]
Role = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Roles = Annotated[list[Role], Field(max_length=32, examples=[["user"]])]
INT64_MAX = 2**63 - 1  # ids are int64 in the proto: a larger one must be a 422, not a crash
_DECIMAL_ID = re.compile(r"[1-9][0-9]{0,18}")


def _decimal_id(value: Any) -> Any:
    """A path id is written in ASCII digits with no sign, zero, space, point or exponent.

    Without this, pydantic's lax int reads "1.0", "01", "+1" and Arabic-Indic digits as user 1:
    one user with many URLs, each its own cache entry and its own way past a path rule.
    """
    if isinstance(value, str) and not _DECIMAL_ID.fullmatch(value):
        raise ValueError("a user id is a positive integer written in decimal digits")
    return value


UserId = Annotated[
    int,
    Path(ge=1, le=INT64_MAX, description="The user's id", examples=[42]),
    BeforeValidator(_decimal_id),
]

_USER_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "roles": ["user"],
    "created_at": "2026-11-25T16:00:00+00:00",
    "updated_at": "2026-11-25T16:05:00+00:00",
}


class UserPublic(BaseModel):
    """A user as the API returns it (never a password or a hash)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_USER_EXAMPLE]})

    id: int
    email: str
    name: str
    roles: list[str]
    created_at: datetime
    updated_at: datetime


class UserCreate(BaseModel):
    """POST /api/users body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "password": "correct horse battery",
                    "roles": ["user"],
                }
            ]
        },
    )

    email: Email
    name: Name
    password: Password
    roles: Roles = Field(default_factory=list)


class UserUpdate(BaseModel):
    """PATCH /api/users/{id} body: the keys present become the update mask."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"name": "Ada King"}, {"roles": ["admin"]}],
        },
    )

    # `X | SkipJsonSchema[None] = None`: absent means "not in the mask"; null is refused below.
    email: Email | SkipJsonSchema[None] = None
    name: Name | SkipJsonSchema[None] = None
    password: Password | SkipJsonSchema[None] = None
    roles: Roles | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _present_fields_have_values(self) -> UserUpdate:
        if not self.model_fields_set:
            raise ValueError("the body names no field to update (email, name, password, roles)")
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)}")
        return self

    @property
    def update_mask(self) -> list[str]:
        """The field-mask paths: exactly the keys the client sent, in a stable order."""
        return sorted(self.model_fields_set)


class UserPage(BaseModel):
    """One page of GET /api/users (paged JSON form)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"users": [_USER_EXAMPLE], "next_page_token": "djE6NDI"}]}
    )

    users: list[UserPublic]
    next_page_token: str | None = Field(
        description="Pass as page_token for the next page; null on the last page."
    )


class UserEvent(BaseModel):
    """The `data` of one Server-Sent Event from GET /api/users/updates."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_type": "user.updated",
                    "user_id": 42,
                    "user": _USER_EXAMPLE,
                    "occurred_at": "2026-11-25T16:05:00+00:00",
                }
            ]
        }
    )

    event_type: str = Field(description="user.created, user.updated or user.deleted")
    user_id: int
    user: UserPublic | None = Field(description="The user after the change; null for a deletion.")
    occurred_at: datetime
