"""The one logging setup: structlog, JSON lines to stdout, request and event ids from contextvars,
trace_id and span_id (hex) on every line written inside a recording span (shop_common.observability).

Every gRPC call writes one access line, so rendering is on the hot path: the lines are rendered
with orjson (stdlib json as the fallback for what orjson refuses) and written to stdout with one
write and one flush, instead of json.dumps and print() (the GetUser benchmark's access log cost).
"""

from __future__ import annotations

import contextvars
import json as stdlib_json
import logging
import sys
import time
from typing import Any, cast

import orjson
import structlog
from opentelemetry import trace

_REDACTED_KEYS = frozenset({"password", "password_hash", "authorization", "token", "secret"})


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Never let a credential reach a log line, whatever a caller passes."""
    for key in event_dict.keys() & _REDACTED_KEYS:
        event_dict[key] = "***"
    return event_dict


def _dumps(event_dict: dict[str, Any], default: Any = None, **_: Any) -> str:
    """The event as one JSON object; stdlib json for what orjson refuses (integers beyond 64
    bits, non-string keys), so a line is never lost."""
    try:
        return orjson.dumps(event_dict, default=default).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return stdlib_json.dumps(event_dict, default=default)


def _ascii_line(message: str) -> str:
    try:
        return stdlib_json.dumps(stdlib_json.loads(message))
    except ValueError:  # not JSON (the console renderer)
        return message.encode("ascii", "backslashreplace").decode("ascii")


class StdoutLogger:
    """Writes each rendered line to the current sys.stdout (so a swapped stdout, e.g. pytest's
    capture, receives it, as with structlog's PrintLogger) with one write and one flush."""

    def msg(self, message: str) -> None:
        out = sys.stdout
        try:
            out.write(message + "\n")
        except UnicodeEncodeError:
            # orjson writes UTF-8 text; a stdout that cannot encode it gets the line escaped
            # (\uXXXX), as stdlib json renders it.
            out.write(_ascii_line(message) + "\n")
        out.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _stdout_logger(*_: Any) -> StdoutLogger:
    return StdoutLogger()


# The ContextVars that structlog.contextvars.bind_contextvars creates, by name. structlog keeps
# them in this (private) dict; without it, its own merge_contextvars is used.
_STRUCTLOG_VARS: dict[str, contextvars.ContextVar[Any]] | None = getattr(
    structlog.contextvars, "_CONTEXT_VARS", None
)
_PREFIX_LEN = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)


def _merge_contextvars(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog's merge_contextvars (bound values, the event's own keys win) reading only the
    variables bind_contextvars made, instead of copying and scanning the whole context."""
    for var in tuple(_STRUCTLOG_VARS.values()):  # type: ignore[union-attr]
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(var.name[_PREFIX_LEN:], value)
    return event_dict


_second_prefix: tuple[int, str] = (-1, "")


def _add_timestamp(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """TimeStamper(fmt="iso", utc=True)'s string ("2026-11-25T19:03:19.095385Z", without the
    fraction when it is zero), with the date and time formatted once per second."""
    global _second_prefix
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached_second, prefix = _second_prefix
    if seconds != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_prefix = (seconds, prefix)
    micros = nanos // 1000
    event_dict["timestamp"] = f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"
    return event_dict


def _format_exc_info(logger: Any, name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog's format_exc_info, run only for the events that carry exc_info."""
    if "exc_info" in event_dict:
        return cast(dict[str, Any], structlog.processors.format_exc_info(logger, name, event_dict))
    return event_dict


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """trace_id and span_id of the current span, as OTLP backends show them, when it records
    (with tracing off: one context lookup, nothing added)."""
    span = trace.get_current_span()
    if span.is_recording():
        context = span.get_span_context()
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    shared: list[Any] = [
        _merge_contextvars
        if _STRUCTLOG_VARS is not None
        else structlog.contextvars.merge_contextvars,
        _add_trace_ids,
        structlog.processors.add_log_level,
        _add_timestamp,
        _redact,
        _format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=level, stream=sys.stdout, format="%(message)s", force=True)
    for noisy in ("aiormq", "aio_pika", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; bind request_id / event_id with structlog.contextvars."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]
