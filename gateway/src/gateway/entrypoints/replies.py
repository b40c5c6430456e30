"""What the pipeline sends over raw ASGI: a Reply (gateway.domain.replies), buffered or streamed, and
problem+json."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from shop_common.web import problem_response
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gateway.domain.errors import UpstreamError
from gateway.domain.replies import Reply, header_value

__all__ = ("Reply", "encode", "header_value", "send_problem", "send_reply")
RawHeaders = list[tuple[bytes, bytes]]
# A backend answer that declares at most this many bytes is read whole and sent in one message.
ONE_MESSAGE_BYTES = 65_536


def encode(headers: Iterable[tuple[str, str]]) -> RawHeaders:
    """ASGI header pairs (lower-case latin-1 names)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_reply(send: Send, reply: Reply, *, head_only: bool = False) -> None:
    """Send reply; a buffered body gets its Content-Length, a streamed one is passed through."""
    headers = encode(reply.headers) + encode(reply.extra)
    body = reply.body
    if isinstance(body, bytes):
        headers = [h for h in headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else body})
        return
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if head_only:
        body.release()
        await send({"type": "http.response.body", "body": b""})
        return
    if body.content_length is not None and body.content_length <= ONE_MESSAGE_BYTES:
        # Declared small: one body message, not a chunk plus an empty closing one (each goes
        # through every middleware's send). A chunked or large answer still streams.
        try:
            whole = await body.buffer(ONE_MESSAGE_BYTES)
        except UpstreamError:  # broke off: what was read is sent below, as streaming would have
            whole = None
        if whole is not None:
            await send({"type": "http.response.body", "body": whole})
            return
    async for chunk in body:
        if chunk:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> None:
    """A problem+json answer (with the request id and the path as instance)."""
    response = problem_response(Request(scope), status, detail=detail, headers=headers)
    for name, value in extra:
        response.headers.append(name, value)
    await response(scope, receive, send)
