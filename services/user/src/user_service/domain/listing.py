"""ListUsers: the filter language and tamper-evident keyset page tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import Field
from shop_common.pagination import INT64_MAX, InvalidPageTokenError, PageTokenBody, PageTokenCodec

from user_service.domain.errors import InvalidArgument
from user_service.domain.model import ROLE_PATTERN, has_control_characters

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_FILTER_LENGTH = 500


@dataclass(frozen=True)
class UserFilter:
    """Parsed filter: `email:<substring>` (case-insensitive) and `role:<role>`, AND-ed."""

    email_contains: str | None = None
    role: str | None = None

    @property
    def canonical(self) -> str:
        """A stable text form, bound into page tokens so a token cannot switch filters."""
        return json.dumps([self.email_contains, self.role])


def parse_filter(text: str) -> UserFilter:
    """Parse the filter; InvalidArgument names the bad term."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgument(f"filter must be at most {MAX_FILTER_LENGTH} characters")
    if has_control_characters(text):
        raise InvalidArgument("filter must not contain control characters")
    email: str | None = None
    role: str | None = None
    for term in text.split():
        key, sep, value = term.partition(":")
        if not sep or not value:
            raise InvalidArgument(f"filter term {term!r} must look like key:value")
        if key == "email" and email is None:
            email = value.lower()
        elif key == "role" and role is None:
            if not ROLE_PATTERN.match(value):
                raise InvalidArgument(f"filter role {value!r} is not a valid role")
            role = value
        elif key in ("email", "role"):
            raise InvalidArgument(f"filter key {key!r} repeated")
        else:
            raise InvalidArgument(f"unknown filter key {key!r}; use email: or role:")
    return UserFilter(email, role)


def page_size_or_default(page_size: int) -> int:
    """0 means the default; otherwise 1..MAX_PAGE_SIZE or InvalidArgument."""
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


class CursorBody(PageTokenBody):
    """What a ListUsers token carries: `a` the last id seen (users.id is BIGINT), `f` the filter."""

    a: int = Field(ge=0, le=INT64_MAX)


class UserPageTokens:
    """Encodes the keyset position (last id) as an HMAC-signed, filter-bound, opaque token."""

    def __init__(self, secret: str) -> None:
        self._codec = PageTokenCodec(secret, CursorBody)

    def encode(self, after_id: int, user_filter: UserFilter) -> str:
        """A token meaning "ids greater than after_id, same filter"."""
        return self._codec.encode(CursorBody(a=after_id, f=user_filter.canonical))

    def decode(self, token: str, user_filter: UserFilter) -> int:
        """The after_id in token; InvalidArgument when forged, malformed or for another filter."""
        try:
            return self._codec.decode(token, user_filter.canonical).a
        except InvalidPageTokenError as exc:
            raise InvalidArgument(str(exc)) from exc
