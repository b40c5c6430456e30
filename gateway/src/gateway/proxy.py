"""HTTP proxying over ONE shared aiohttp session (keep-alive pool), streaming the response body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiohttp

from gateway.headers import strip_hop_by_hop


class UpstreamError(Exception):
    """A backend failure already mapped to the status the client sees (502 or 504)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Proxy:
    """Forwards a request to base_url + path; the caller owns the session's lifetime via close()."""

    def __init__(self, *, pool_size: int = 200) -> None:
        connector = aiohttp.TCPConnector(limit=pool_size, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def forward(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        *,
        timeout_seconds: float,
    ) -> tuple[int, list[tuple[str, str]], AsyncIterator[bytes]]:
        """Status, cleaned response headers and a body iterator (closes the upstream at its end)."""
        try:
            response = await self._session.request(
                method,
                url,
                headers=list(headers),
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            )
        except TimeoutError as exc:
            raise UpstreamError(504, "the backend did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, "the backend could not be reached") from exc
        response_headers = [
            (k, v)
            for k, v in strip_hop_by_hop(list(response.headers.items()))
            if k.lower() != "content-length"
        ]

        async def body_chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_any():
                    yield chunk
            except (TimeoutError, aiohttp.ClientError):
                return
            finally:
                response.release()

        return response.status, response_headers, body_chunks()

    async def close(self) -> None:
        """Close the shared session and its pool."""
        await self._session.close()
