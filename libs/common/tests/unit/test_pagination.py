"""shop_common.pagination: round trips, tamper evidence, and validly signed bodies of the wrong
shape refused as InvalidPageTokenError (never another exception)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field
from shop_common.pagination import (
    INT64_MAX,
    MAX_TOKEN_LENGTH,
    InvalidPageTokenError,
    PageTokenBody,
    PageTokenCodec,
    UtcTimestamp,
    sign_token,
)
from shop_testing.page_tokens import forged_page_tokens, malformed_bodies

SECRET = "unit-test-secret"


class IdBody(PageTokenBody):
    a: int = Field(ge=0, le=INT64_MAX)


class KeysetBody(PageTokenBody):
    t: UtcTimestamp
    i: UUID


ID_VALID = {"a": 5, "f": "[]"}
KEYSET_VALID = {"t": "2026-11-25T16:00:00+00:00", "i": str(uuid4()), "f": "[]"}


@given(st.integers(min_value=0, max_value=INT64_MAX), st.text(max_size=50))
def test_round_trip(after: int, canonical: str) -> None:
    codec = PageTokenCodec(SECRET, IdBody)
    assert codec.decode(codec.encode(IdBody(a=after, f=canonical)), canonical).a == after


def test_the_valid_reference_bodies_decode() -> None:
    assert (
        PageTokenCodec(SECRET, IdBody).decode(sign_token(SECRET, b'{"a":5,"f":"[]"}'), "[]").a == 5
    )
    keyset = PageTokenCodec(SECRET, KeysetBody)
    token = sign_token(SECRET, json.dumps(KEYSET_VALID).encode())
    assert keyset.decode(token, "[]").t == datetime(2026, 11, 25, 16, tzinfo=UTC)


def test_tampering_another_secret_and_another_filter_are_refused() -> None:
    codec = PageTokenCodec(SECRET, IdBody)
    token = codec.encode(IdBody(a=42, f="[1]"))
    with pytest.raises(InvalidPageTokenError, match="different filter"):
        codec.decode(token, "[2]")
    with pytest.raises(InvalidPageTokenError, match="not valid"):
        PageTokenCodec("another secret", IdBody).decode(token, "[1]")
    flipped = token[:5] + ("B" if token[5] == "A" else "A") + token[6:]
    for bad in ("", "!!!", "é", token[:-2], flipped, "A" * 40, "A" * (MAX_TOKEN_LENGTH + 1)):
        with pytest.raises(InvalidPageTokenError):
            codec.decode(bad, "[1]")


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        PageTokenCodec("", IdBody)


@pytest.mark.parametrize(("label", "token"), sorted(forged_page_tokens(SECRET, ID_VALID).items()))
def test_signed_id_bodies_of_the_wrong_shape_are_invalid_tokens(label: str, token: str) -> None:
    with pytest.raises(InvalidPageTokenError):
        PageTokenCodec(SECRET, IdBody).decode(token, "[]")


@pytest.mark.parametrize(
    ("label", "token"), sorted(forged_page_tokens(SECRET, KEYSET_VALID).items())
)
def test_signed_keyset_bodies_of_the_wrong_shape_are_invalid_tokens(label: str, token: str) -> None:
    with pytest.raises(InvalidPageTokenError):
        PageTokenCodec(SECRET, KeysetBody).decode(token, "[]")


def test_the_forgeries_cover_every_shape_the_issue_names() -> None:
    labels = set(malformed_bodies(ID_VALID))
    assert {"not-json", "json-list", "missing-a", "missing-f", "extra-key"} <= labels
    assert {"a=true", "a=numeric-string", "a=float", "a=2**64", "a=negative"} <= labels
    assert {"a=huge-string", "f=huge-string"} <= labels


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":true,"f":"[]"}',  # a bool is not an int
        b'{"a":"5","f":"[]"}',  # a numeric string is not a number
        b'{"a":5.0,"f":"[]"}',  # a float is not an int
        b'{"a":9223372036854775808,"f":"[]"}',  # past BIGINT
        b'{"a":-1,"f":"[]"}',
        b'{"a":5,"f":[]}',  # the filter must be its canonical text
    ],
)
def test_no_lax_coercion_of_the_id(raw: bytes) -> None:
    with pytest.raises(InvalidPageTokenError, match="not valid"):
        PageTokenCodec(SECRET, IdBody).decode(sign_token(SECRET, raw), "[]")


@pytest.mark.parametrize(
    "t",
    [
        "2026-11-25T16:00:00",  # no offset
        "0001-01-01T00:00:00+05:00",  # leaves the calendar in UTC
        "9999-12-31T23:59:59-05:00",
        "2",  # pydantic would read a Unix time
        "1764086400",
        "2026-11-25",
        "not a time",
    ],
)
def test_keyset_timestamps_are_rfc3339_with_an_offset_and_representable_in_utc(t: str) -> None:
    raw = json.dumps({**KEYSET_VALID, "t": t}).encode()
    with pytest.raises(InvalidPageTokenError, match="not valid"):
        PageTokenCodec(SECRET, KeysetBody).decode(sign_token(SECRET, raw), "[]")


def test_keyset_timestamps_come_back_in_utc() -> None:
    raw = json.dumps({**KEYSET_VALID, "t": "2026-11-25T18:00:00.5+02:00"}).encode()
    t = PageTokenCodec(SECRET, KeysetBody).decode(sign_token(SECRET, raw), "[]").t
    assert t == datetime(2026, 11, 25, 16, 0, 0, 500000, tzinfo=UTC)
    assert t.utcoffset() is not None and t.utcoffset().total_seconds() == 0
