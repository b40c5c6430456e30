"""HTTP proxying over ONE shared aiohttp session (keep-alive pool), streaming the response body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import aiohttp
from yarl import URL

from gateway.domain.errors import UpstreamError
from gateway.domain.headers import strip_hop_by_hop

# The gateway's own server sets these; a backend's copy would be a duplicate (nginx drops them).
_SERVER_OWNED = frozenset({"date", "server"})


class ResponseBody:
    """The backend's body as an async iterator; the connection returns to the pool at its end.

    `release()` gives the connection back without reading (a retried or abandoned answer).
    """

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._pending: list[bytes] = []
        # The backend's declared size (None when chunked): a small one is sent in one message.
        self.content_length = response.content_length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            pending, self._pending = self._pending, []
            for chunk in pending:
                yield chunk
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError):
            return  # the client sees a short body; the access log shows the status sent
        finally:
            self._response.release()

    async def buffer(self, limit: int) -> bytes | None:
        """The whole body if it is at most limit bytes; else None, and iteration still yields all."""
        size = sum(map(len, self._pending))
        try:
            while size <= limit:
                chunk = await self._response.content.readany()
                if not chunk:
                    self._response.release()
                    body, self._pending = b"".join(self._pending), []
                    return body
                self._pending.append(chunk)
                size += len(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._response.release()
            raise UpstreamError(502, "the backend's answer broke off") from exc
        return None

    def release(self) -> None:
        """Give the connection back without reading the body."""
        self._response.release()


class Proxy:
    """Forwards a request to a URL; the caller owns the session's lifetime via close()."""

    def __init__(self, *, pool_size: int = 200) -> None:
        connector = aiohttp.TCPConnector(limit=pool_size, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )

    async def forward(
        self,
        method: str,
        url: URL,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        *,
        timeout_seconds: float,
        stream: bool = False,
    ) -> tuple[int, list[tuple[str, str]], ResponseBody]:
        """Status, cleaned response headers and the body (Content-Length kept: bytes unchanged).

        url is sent as it is: built with `URL(..., encoded=True)`, its path is not normalised
        again (a second normalisation could turn the path a route allowed into another one).
        timeout_seconds bounds the whole exchange, or with `stream` (an event stream) only the
        wait for the response headers: the body then flows until either side ends it.
        """
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=timeout_seconds, sock_read=None)
            if stream
            else aiohttp.ClientTimeout(total=timeout_seconds)
        )
        try:
            async with asyncio.timeout(timeout_seconds if stream else None):
                response = await self._session.request(
                    method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=timeout,
                )
        except TimeoutError as exc:
            raise UpstreamError(504, "the backend did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, "the backend could not be reached") from exc
        return (
            response.status,
            strip_hop_by_hop(response.headers.items(), _SERVER_OWNED),
            ResponseBody(response),
        )

    async def close(self) -> None:
        """Close the shared session and its pool."""
        await self._session.close()
