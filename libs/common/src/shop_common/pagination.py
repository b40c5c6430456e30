"""Opaque, tamper-evident keyset page tokens, shared by every service that pages a list.

A token is base64url (no padding) of `JSON body + HMAC-SHA256(body)[:16]`. The body is a
pydantic model the service defines (subclass `PageTokenBody`): its keyset position plus `f`,
the canonical text of the filters the token was issued for, so a token cannot switch filters.

A valid signature proves only that this system signed the bytes, not that they have the shape
the service expects (a secret can leak, an old release can have signed another shape), so
`decode` validates the WHOLE body against the model in strict mode: not JSON, not an object,
a missing or extra key, a bool for an int, a string for a number, an int past the column's
range all raise `InvalidPageTokenError`, which each service answers as 400 / INVALID_ARGUMENT.
The error never says which part failed: the client only needs to know the token is unusable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

SIGNATURE_BYTES = 16
# Longer tokens are refused before any decoding: the bodies this system signs are < 300 bytes.
MAX_TOKEN_LENGTH = 2048
MAX_FILTER_LENGTH = 1024
INT64_MAX = 2**63 - 1  # PostgreSQL BIGINT


def sign_token(secret: str, raw: bytes) -> str:
    """The token of raw bytes under secret (what `PageTokenCodec.encode` sends; tests forge with
    it to prove that a validly signed body of the wrong shape is still refused)."""
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(raw + signature).decode().rstrip("=")


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    # Parsed here: pydantic would also read "2" or 1764086400 as a Unix time, even when strict.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset")
    return datetime.fromisoformat(value)


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # an offset that leaves the calendar in UTC
        raise ValueError("timestamp out of range") from exc


# A timestamp in a token body: only RFC 3339 text with an offset, kept in UTC.
UtcTimestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]


class InvalidPageTokenError(ValueError):
    """A page token that is forged, corrupted, of the wrong shape or issued for other filters."""


class PageTokenBody(BaseModel):
    """Base of every token body: strict types, no extra key, `f` = the canonical filters."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    f: str = Field(max_length=MAX_FILTER_LENGTH)


BodyT = TypeVar("BodyT", bound=PageTokenBody)


class PageTokenCodec(Generic[BodyT]):
    """Signs bodies of one model into tokens and turns tokens back into validated bodies."""

    def __init__(self, secret: str, body_type: type[BodyT]) -> None:
        if not secret:
            raise ValueError("a page token secret must not be empty")
        self._secret = secret
        self._key = secret.encode()
        self._body_type = body_type

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:SIGNATURE_BYTES]

    def encode(self, body: BodyT) -> str:
        """The opaque URL-safe token carrying body."""
        return sign_token(self._secret, body.model_dump_json().encode())

    def decode(self, token: str, expected_filter: str) -> BodyT:
        """The body in token, checked whole; InvalidPageTokenError when it cannot be used."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidPageTokenError("page_token is not valid")
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidPageTokenError("page_token is not valid") from exc
        raw, signature = blob[:-SIGNATURE_BYTES], blob[-SIGNATURE_BYTES:]
        if len(blob) <= SIGNATURE_BYTES or not hmac.compare_digest(signature, self._sign(raw)):
            raise InvalidPageTokenError("page_token is not valid")
        try:
            body = self._body_type.model_validate_json(raw)
        except ValidationError as exc:
            # Signed by this secret but not a body of this model: never a 500, never details.
            raise InvalidPageTokenError("page_token is not valid") from exc
        if body.f != expected_filter:
            raise InvalidPageTokenError("page_token was issued for a different filter")
        return body
