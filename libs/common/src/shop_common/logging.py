"""The one logging setup: structlog, JSON lines to stdout, request and event ids from contextvars."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_REDACTED_KEYS = frozenset({"password", "password_hash", "authorization", "token", "secret"})


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Never let a credential reach a log line, whatever a caller passes."""
    for key in event_dict.keys() & _REDACTED_KEYS:
        event_dict[key] = "***"
    return event_dict


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=level, stream=sys.stdout, format="%(message)s", force=True)
    for noisy in ("aiormq", "aio_pika", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; bind request_id / event_id with structlog.contextvars."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]
