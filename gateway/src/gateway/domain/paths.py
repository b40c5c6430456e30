"""The one canonical form of a request path, and the query string's character check.

The gateway matches routes on the canonical path and sends upstream exactly that path (the
route's prefix stripped), never the client's spelling: a second normalisation by the HTTP
client or the backend could otherwise reach a path no route allows (`/api/orders/../metrics`).

The canonical form of a raw request path (RFC 3986 §3.3 syntax):
- it is origin-form: it starts with "/";
- every character is a pchar or "/" (unreserved, sub-delims, ":", "@", or a %HH escape);
- escapes of unreserved characters are decoded (`%7E` → `~`, `%2e` → `.`), every other escape
  is kept with upper-case hex digits (`%c3%a9` → `%C3%A9`), and the whole path decodes to UTF-8;
- one trailing slash is not significant: `/api/orders/` is `/api/orders` (the written rule for
  trailing slashes: no route and no backend ever sees one, so nothing redirects on one).

Refused with 400 instead of rewritten, because a browser never sends them and a backend could
read them differently from the gateway:
- dot segments (`.`, `..`, also when spelled `%2e`): RFC 3986 §5.2.4 would remove them, which
  makes `/api/orders/../metrics` name `/metrics`, a path outside the route;
- empty segments (`//`) and encoded slashes or backslashes (`%2F`, `%5C`): one path, two readings;
- encoded control characters (`%00`, `%0A`, ...) and malformed escapes.
"""

from __future__ import annotations

import string
from urllib.parse import unquote

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PCHAR_LITERAL = _UNRESERVED | frozenset("!$&'()*+,;=:@")
_PATH_LITERAL = _PCHAR_LITERAL | {"/"}
# A query is not routed on: printable ASCII but "#" (controls, spaces and bytes above 0x7E never).
_QUERY_LITERAL = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"#", "%"}
_HEX = frozenset(string.hexdigits)
_REFUSED_ESCAPES = frozenset({0x2F, 0x5C, 0x7F, *range(0x20)})  # "/", "\", DEL, controls
MAX_PATH_LENGTH = 2048


class PathRefusedError(ValueError):
    """The request target has no canonical form (→ 400 with this reason)."""


def _canonical_segment(segment: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "%":
            pair = segment[index + 1 : index + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise PathRefusedError("the path has a malformed percent-escape")
            code = int(pair, 16)
            if code in _REFUSED_ESCAPES:
                raise PathRefusedError("the path has an encoded slash, backslash or control byte")
            decoded = chr(code)
            out.append(decoded if decoded in _UNRESERVED else "%" + pair.upper())
            index += 3
            continue
        if char not in _PCHAR_LITERAL:
            raise PathRefusedError("the path has a character that must be percent-encoded")
        out.append(char)
        index += 1
    canonical = "".join(out)
    if canonical in (".", ".."):
        raise PathRefusedError("the path has a dot segment ('.' or '..')")
    return canonical


def canonical_path(raw: str) -> str:
    """The canonical form of a raw (still percent-encoded) path; PathRefusedError if it has none."""
    if not raw.startswith("/"):
        raise PathRefusedError("the request target must be a path starting with '/'")
    if len(raw) > MAX_PATH_LENGTH:
        raise PathRefusedError(f"the path is longer than {MAX_PATH_LENGTH} characters")
    body = raw[1:]
    if "%" not in body and _PATH_LITERAL.issuperset(body):  # the usual case: one set test
        segments = body.removesuffix("/").split("/")
        if "" in segments and body != "":
            raise PathRefusedError("the path has an empty segment ('//')")
        if "." in segments or ".." in segments:
            raise PathRefusedError("the path has a dot segment ('.' or '..')")
        return "/" + "/".join(segments)
    if body.endswith("/"):
        body = body[:-1]
    if not body:
        return "/"
    segments = body.split("/")
    if "" in segments:
        raise PathRefusedError("the path has an empty segment ('//')")
    canonical = "/" + "/".join(_canonical_segment(s) for s in segments)
    try:
        unquote(canonical, errors="strict")
    except UnicodeDecodeError as exc:
        raise PathRefusedError("the path's escapes are not UTF-8") from exc
    return canonical


def decoded_path(canonical: str) -> str:
    """The canonical path percent-decoded (what an ASGI app expects in scope["path"])."""
    return unquote(canonical)


def check_query(raw: str) -> str:
    """The query string unchanged if every character may appear in one; PathRefusedError if not."""
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "%":
            pair = raw[index + 1 : index + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise PathRefusedError("the query has a malformed percent-escape")
            index += 3
            continue
        if char not in _QUERY_LITERAL:
            raise PathRefusedError("the query has a character that must be percent-encoded")
        index += 1
    return raw
