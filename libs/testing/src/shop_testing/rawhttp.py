"""A raw HTTP/1.1 client for adversarial tests, and the checks every refused request must pass.

httpx (like every polite client) normalises the request target before it sends it: `/a/../b`
leaves httpx as `/b`. An attacker's client does no such thing, so path attacks are written byte
for byte with `raw_request`. `assert_problem` checks a refusal: the exact status, as
problem+json, with no stack trace, SQL, server software or internal address in it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class RawResponse:
    """What came back, unparsed beyond the status line and the header fields."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header field (case-insensitive), or None."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


async def raw_request(
    base_url: str,
    method: str,
    target: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    read_seconds: float = 30.0,
) -> RawResponse:
    """Send one request with `target` exactly as given (no normalisation) and read the answer.

    Host is the gateway's own unless `headers` sets one; Connection: close, so the answer ends
    at EOF; Content-Length is added when there is a body and `headers` has none.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    names = {n.lower() for n, _ in pairs}
    if "host" not in names:
        pairs.insert(0, ("Host", f"{host}:{port}"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        pairs.append(("Content-Length", str(len(body))))
    pairs.append(("Connection", "close"))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in pairs)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), read_seconds)
    finally:
        writer.close()
    return _parse(raw)


def _parse(raw: bytes) -> RawResponse:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [(n.strip(), v.strip()) for n, v in (line.split(":", 1) for line in lines[1:])]
    if any(n.lower() == "transfer-encoding" and "chunked" in v.lower() for n, v in headers):
        rest = _dechunk(rest)
    return RawResponse(status, headers, rest)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


# An internal address: a loopback or private IPv4 address with a port, or an internal host name.
INTERNAL_ADDRESS = re.compile(
    r"\b(?:127\.\d+\.\d+\.\d+|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+"
    r"|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+|localhost|\[::1\])(?::\d+)?"
)
LEAK_MARKERS = ("Traceback", 'File "', "asyncpg", "sqlalchemy", "SELECT ", "uvicorn")


def assert_problem(response: RawResponse, status: int) -> dict[str, Any]:
    """The answer is `status` as problem+json, and leaks no trace, SQL or internal address."""
    assert response.status == status, (response.status, response.body[:300])
    media = (response.header("content-type") or "").split(";")[0]
    assert media == PROBLEM_JSON, (media, response.body[:300])
    assert_no_leak(response)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def assert_no_leak(response: RawResponse) -> None:
    """No stack trace, SQL, server software or internal address in the headers or the body."""
    text = (
        response.body.decode("utf-8", "replace")
        + "\n"
        + "\n".join(f"{n}: {v}" for n, v in response.headers)
    )
    for marker in LEAK_MARKERS:
        assert marker not in text, (marker, text[:500])
    found = INTERNAL_ADDRESS.search(text)
    assert found is None, (found.group(0) if found else None, text[:500])


# What uvicorn's HTTP parser answers, before any application code runs, to bytes that are not
# an HTTP request it serves (an unknown method token, an authority-form CONNECT target, ...).
PARSER_REFUSAL = b"Invalid HTTP request received."


def assert_parser_refusal(response: RawResponse) -> None:
    """The HTTP parser refused the request itself: 400, its fixed text, nothing reflected."""
    assert (response.status, response.body) == (400, PARSER_REFUSAL), (
        response.status,
        response.body[:300],
    )
    assert_no_leak(response)
