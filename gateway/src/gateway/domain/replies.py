"""A reply on its way out of the pipeline: buffered bytes or a body streamed from a backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Protocol


class StreamedBody(Protocol):
    """A backend's body read as it arrives (gateway.adapters.http_proxy.ResponseBody)."""

    content_length: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def buffer(self, limit: int) -> bytes | None:
        """The whole body if it is at most limit bytes; else None (iteration still yields all)."""
        ...

    def release(self) -> None:
        """Give the connection back without reading the body."""
        ...


@dataclass
class Reply:
    """A response on its way out: the body is bytes (buffered) or streamed from the backend."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | StreamedBody
    extra: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive)."""
        return header_value(self.headers, name)


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header name in a list of (name, value)."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None
