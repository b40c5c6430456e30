"""Building protobuf messages from domain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from user_service.grpc.servicer import _timestamp


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
