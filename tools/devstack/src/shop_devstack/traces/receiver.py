"""A small OTLP/HTTP trace receiver for the demo, tests and benchmarks: it keeps spans in memory.

`async with OtlpReceiver() as receiver:` serves POST /v1/traces on an ephemeral port; point a
service at it with OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint. Bodies are protobuf
(application/x-protobuf) or OTLP/JSON (application/json), and the answer is in the encoding asked.
/v1/metrics and /v1/logs are accepted and dropped, so that an SDK exporting those too is not
answered 404 on every export. A body that does not decode gets 400 with a google.rpc.Status; one
over `max_body_bytes` gets 413 (aiohttp's client_max_size, checked on the decompressed body).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from aiohttp import web
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from shop_common.logging import get_logger
from shop_common.observability.otlp import (
    BadPayload,
    ReceivedSpan,
    decode_json,
    decode_protobuf,
    spans_of,
)

log = get_logger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_SPANS = 200_000


class OtlpReceiver:
    """OTLP/HTTP receiver; `keep_spans=False` only counts (for benchmarks that export a lot)."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_spans: int = DEFAULT_MAX_SPANS,
        keep_spans: bool = True,
    ) -> None:
        self._host = host
        self._port = port
        self._max_body_bytes = max_body_bytes
        self._keep_spans = keep_spans
        self._spans: deque[ReceivedSpan] = deque(maxlen=max_spans)
        self._lock = (
            threading.Lock()
        )  # spans() may be read from another thread (BackgroundReceiver)
        self._runner: web.AppRunner | None = None
        self.spans_received = 0
        self.exports_received = 0
        self.rejected = 0

    @property
    def endpoint(self) -> str:
        """The base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the SDK appends /v1/traces)."""
        if self._runner is None:
            raise RuntimeError("the receiver is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def spans(self) -> list[ReceivedSpan]:
        """Every span kept so far, in arrival order."""
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans of one trace, in arrival order."""
        return [span for span in self.spans() if span.trace_id == trace_id]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    async def wait_for(
        self,
        predicate: Callable[[list[ReceivedSpan]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - the agreed API: a deadline for a poll
        interval: float = 0.05,
    ) -> list[ReceivedSpan]:
        """Poll until predicate(spans) is true and return the spans; TimeoutError says what came.

        It polls (every `interval` s) rather than waiting on an event, so that it works from any
        event loop, also when the receiver serves from a BackgroundReceiver's thread."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if predicate(spans):
                return spans
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no match after {timeout:.1f}s; had {_summary(spans)}")
            await asyncio.sleep(interval)

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_body_bytes)
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._dropped)
        app.router.add_post("/v1/logs", self._dropped)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        log.info("otlp_receiver_started", endpoint=self.endpoint)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OtlpReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _traces(self, request: web.Request) -> web.Response:
        encoding = _encoding(request)
        if encoding is None:
            return self._reject(415, f"content type must be {PROTOBUF} or {JSON}", PROTOBUF)
        body = await request.read()
        try:
            export = decode_protobuf(body) if encoding == PROTOBUF else decode_json(body)
            received = spans_of(export) if self._keep_spans else None
        except BadPayload as exc:
            return self._reject(400, str(exc), encoding)
        self.exports_received += 1
        if received is None:
            self.spans_received += _count(export)
        else:
            self.spans_received += len(received)
            with self._lock:
                self._spans.extend(received)
        return _ok(encoding, ExportTraceServiceResponse())

    async def _dropped(self, request: web.Request) -> web.Response:
        encoding = _encoding(request) or PROTOBUF
        await request.read()
        return _ok(encoding, None)

    def _reject(self, status: int, message: str, encoding: str) -> web.Response:
        self.rejected += 1
        log.warning("otlp_export_rejected", status=status, reason=message)
        if encoding == JSON:
            return web.json_response({"code": 3, "message": message}, status=status)
        body = Status(code=3, message=message).SerializeToString()
        return web.Response(status=status, body=body, content_type=PROTOBUF)


def _encoding(request: web.Request) -> str | None:
    content_type = request.content_type.lower()
    if content_type in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if content_type == JSON:
        return JSON
    return None


def _ok(encoding: str, response: ExportTraceServiceResponse | None) -> web.Response:
    if encoding == JSON:
        return web.Response(status=200, text="{}", content_type=JSON)
    body = response.SerializeToString() if response is not None else b""
    return web.Response(status=200, body=body, content_type=PROTOBUF)


def _count(export: ExportTraceServiceRequest) -> int:
    return sum(len(s.spans) for rs in export.resource_spans for s in rs.scope_spans)


def _summary(spans: list[ReceivedSpan], limit: int = 12) -> str:
    if not spans:
        return "no spans"
    names = ", ".join(f"{s.service}:{s.name}" for s in spans[:limit])
    more = f" (+{len(spans) - limit} more)" if len(spans) > limit else ""
    return f"{len(spans)} spans in {len({s.trace_id for s in spans})} traces: {names}{more}"
