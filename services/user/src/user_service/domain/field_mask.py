"""Applying an UpdateUser field mask exactly: only the named paths change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from user_service.domain.errors import InvalidArgument
from user_service.domain.model import (
    normalize_email,
    validate_name,
    validate_password,
    validate_roles,
)

MUTABLE_PATHS = ("email", "name", "roles", "password")


@dataclass(frozen=True)
class UserPatch:
    """The validated changes of one UpdateUser call (None = leave unchanged)."""

    email: str | None = None
    name: str | None = None
    roles: tuple[str, ...] | None = None
    password: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when nothing would change."""
        return (
            self.email is None
            and self.name is None
            and self.roles is None
            and self.password is None
        )


def effective_paths(
    paths: Sequence[str], *, email: str, name: str, roles: Sequence[str], password: str
) -> list[str]:
    """The mask's paths, or for an empty mask every mutable field set to a non-default value."""
    if paths:
        return list(paths)
    values = {"email": email, "name": name, "roles": list(roles), "password": password}
    return [path for path in MUTABLE_PATHS if values[path]]


def build_patch(
    paths: Sequence[str], *, email: str, name: str, roles: Sequence[str], password: str
) -> UserPatch:
    """A validated patch with exactly the given paths; InvalidArgument on an unknown path."""
    seen: set[str] = set()
    for path in paths:
        if path not in MUTABLE_PATHS:
            raise InvalidArgument(
                f"unknown field mask path {path!r}; mutable paths: {', '.join(MUTABLE_PATHS)}"
            )
        if path in seen:
            raise InvalidArgument(f"field mask path {path!r} repeated")
        seen.add(path)
    return UserPatch(
        email=normalize_email(email) if "email" in seen else None,
        name=validate_name(name) if "name" in seen else None,
        roles=validate_roles(list(roles)) if "roles" in seen else None,
        password=validate_password(password) if "password" in seen else None,
    )
