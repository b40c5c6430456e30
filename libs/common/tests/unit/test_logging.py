"""configure_logging: one JSON object per line on stdout, with the context, level, timestamp and
credentials redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog
from shop_common.logging import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_access_line_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user-service")
    structlog.contextvars.bind_contextvars(request_id="r-1")
    get_logger("access").info(
        "rpc", method="/shop.user.v1.UserService/GetUser", status="OK", duration_ms=0.42, caller="7"
    )
    [line] = _lines(capsys)
    timestamp = line.pop("timestamp")
    assert line == {
        "event": "rpc",
        "method": "/shop.user.v1.UserService/GetUser",
        "status": "OK",
        "duration_ms": 0.42,
        "caller": "7",
        "service": "user-service",
        "request_id": "r-1",
        "level": "info",
    }
    assert isinstance(timestamp, str) and timestamp.endswith("Z")
    assert datetime.fromisoformat(timestamp).utcoffset() is not None


def test_credentials_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user-service")
    get_logger().warning("login", password="hunter22", token="abc", authorization="Bearer x")
    [line] = _lines(capsys)
    assert (line["password"], line["token"], line["authorization"]) == ("***", "***", "***")
    assert "hunter22" not in json.dumps(line)


def test_values_orjson_refuses_are_still_logged(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user-service")

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    get_logger().info("odd", big=2**70, keys={1: "a"}, value=Opaque(), caller=None)
    [line] = _lines(capsys)
    assert line["big"] == 2**70
    assert line["keys"] == {"1": "a"}
    assert line["value"] == "<opaque>"
    assert line["caller"] is None


def test_exception_and_level_filter(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user-service", level="WARNING")
    log = get_logger()
    log.info("dropped")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    [line] = _lines(capsys)
    assert (line["event"], line["level"]) == ("failed", "error")
    assert "ValueError: boom" in str(line["exception"])


def test_non_ascii_on_an_ascii_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("user-service")
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    monkeypatch.setattr("sys.stdout", out)
    get_logger().info("rpc", name="Zoë")
    out.flush()
    assert json.loads(raw.getvalue())["name"] == "Zoë"


def test_lines_follow_a_swapped_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("user-service")
    log = get_logger()
    log.info("warm")  # the logger is cached on first use, bound to nothing
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stdout", swapped)
    log.info("after")
    assert [json.loads(line)["event"] for line in swapped.getvalue().splitlines()] == ["after"]


@pytest.mark.parametrize(
    ("time_ns", "expected"),
    [
        (1_764_094_999_000_000_000, "2025-11-25T18:23:19Z"),  # no fraction, as isoformat()
        (1_764_094_999_123_456_789, "2025-11-25T18:23:19.123456Z"),  # microseconds, floored
        (1_764_095_000_000_001_000, "2025-11-25T18:23:20.000001Z"),  # the next second
    ],
)
def test_timestamp_as_structlogs_iso_utc(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, time_ns: int, expected: str
) -> None:
    configure_logging("user-service")
    monkeypatch.setattr("time.time_ns", lambda: time_ns)
    get_logger().info("tick")
    [line] = _lines(capsys)
    assert line["timestamp"] == expected
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    as_datetime = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    assert expected == as_datetime.isoformat().replace("+00:00", "Z")


def test_context_values_bound_unbound_and_overridden(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user-service")
    log = get_logger()
    structlog.contextvars.bind_contextvars(request_id="r-2", event_id="e-1")
    log.info("both")
    structlog.contextvars.unbind_contextvars("event_id")
    log.info("one", request_id="given")
    first, second = _lines(capsys)
    assert (first["service"], first["request_id"], first["event_id"]) == (
        "user-service",
        "r-2",
        "e-1",
    )
    assert second["request_id"] == "given" and "event_id" not in second
