"""The RED family's outcome classification (pure) and its recorder's series."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from shop_common.metrics import GRPC_CLIENT_ERRORS, RedRecorder, outcome

ALL_GRPC_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("200", "ok"),
        ("201", "ok"),
        ("304", "ok"),
        ("399", "ok"),
        ("400", "client_error"),
        ("404", "client_error"),
        ("429", "client_error"),
        ("499", "client_error"),
        ("500", "server_error"),
        ("503", "server_error"),
        ("garbage", "server_error"),
    ],
)
def test_http_status_classes(status: str, expected: str) -> None:
    assert outcome("http", status) == expected


def test_every_grpc_code_has_the_outcome_the_contract_names() -> None:
    client = {
        "CANCELLED",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "RESOURCE_EXHAUSTED",
    }
    assert client == GRPC_CLIENT_ERRORS
    for code in ALL_GRPC_CODES:
        expected = "ok" if code == "OK" else "client_error" if code in client else "server_error"
        assert outcome("grpc", code) == expected, code
    assert outcome("grpc", "200") == "server_error"  # an HTTP status is no gRPC code


def test_the_recorder_counts_under_the_shared_names() -> None:
    labels = {"protocol": "grpc", "operation": "/t.Svc/Unit", "code": "NOT_FOUND"}
    before = REGISTRY.get_sample_value("shop_requests_total", {**labels, "outcome": "client_error"})
    recorder = RedRecorder("grpc")
    recorder.record("/t.Svc/Unit", "NOT_FOUND", 0.003)
    recorder.record("/t.Svc/Unit", "NOT_FOUND", 0.004)
    after = REGISTRY.get_sample_value("shop_requests_total", {**labels, "outcome": "client_error"})
    assert after == (before or 0.0) + 2
    count = REGISTRY.get_sample_value(
        "shop_request_duration_seconds_count", {"protocol": "grpc", "operation": "/t.Svc/Unit"}
    )
    assert count is not None and count >= 2
