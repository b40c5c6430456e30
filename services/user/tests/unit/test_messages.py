"""Building protobuf messages from domain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from shop_protos.user.v1 import user_pb2
from user_service.domain.model import User
from user_service.entrypoints.grpc.servicer import _fill_user, _timestamp, user_message


@pytest.mark.parametrize(
    "value",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 11, 25, 16, 20, 0, 123_456, tzinfo=UTC),
        datetime(2026, 3, 1, 1, 2, 3, 456_789, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_timestamp_matches_protobufs_own_conversion(value: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value)
    assert _timestamp(value) == expected


@pytest.mark.parametrize("roles", [(), ("admin", "support")])
def test_user_message_carries_every_public_field(roles: tuple[str, ...]) -> None:
    created = datetime(2026, 11, 25, 16, 20, 0, 123_456, tzinfo=UTC)
    user = User(7, "ada@example.com", "Ada", roles, created, created + timedelta(seconds=90))
    expected = user_pb2.User(
        id=7,
        email="ada@example.com",
        name="Ada",
        roles=list(roles),
        created_at=_expected_timestamp(created),
        updated_at=_expected_timestamp(created + timedelta(seconds=90)),
    )
    assert user_message(user) == expected
    response = user_pb2.GetUserResponse()
    _fill_user(response.user, user)
    assert response == user_pb2.GetUserResponse(user=expected)


def _expected_timestamp(value: datetime) -> Timestamp:
    message = Timestamp()
    message.FromDatetime(value)
    return message
