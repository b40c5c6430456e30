"""The route table: loaded from YAML, validated, and matched against (method, path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class RateLimitConfig(BaseModel):
    """Limit per (identity, route) in a sliding window; `fail` says what happens when Redis is down."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    limit: int = Field(gt=0)
    window_seconds: float = Field(gt=0)
    fail: Literal["open", "closed"] = "open"


class Route(BaseModel):
    """One entry of routes.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    path: str
    methods: tuple[HttpMethod, ...]
    backend: str
    transcode: Literal["grpc"] | None = None
    auth: bool = True
    roles: tuple[str, ...] = ()
    rate_limit: RateLimitConfig | None = None
    timeout_seconds: float = Field(default=5.0, gt=0)
    retries: int = Field(default=0, ge=0, le=5)
    cache_ttl_seconds: float = Field(default=0, ge=0)
    # The request headers a response may vary by: their values are part of the cache key, and a
    # response whose Vary names any other header (or *) is not stored.
    cache_vary: tuple[str, ...] = ("accept",)
    # The same response for every caller (a public catalog): the gateway neither verifies nor
    # forwards credentials (no Authorization, Cookie, X-User-*), and keeps one shared entry.
    anonymous: bool = False
    # Removed from the path before it goes upstream ("/api" maps /api/orders/1 to /orders/1).
    strip_prefix: str = ""
    # A long-lived response (Server-Sent Events): timeout_seconds bounds the wait for the
    # response headers only, then the body streams for as long as the backend sends it.
    stream: bool = False

    @field_validator("cache_vary")
    @classmethod
    def _header_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(name.strip().lower() for name in value)
        if any(not name or not name.replace("-", "").isalnum() for name in names):
            raise ValueError("cache_vary lists header names")
        if set(names) & {"authorization", "cookie"}:
            raise ValueError("the caller's credentials are the cache scope, not a vary header")
        return tuple(sorted(set(names)))

    @model_validator(mode="after")
    def _anonymous_is_public(self) -> Route:
        if self.anonymous and (self.auth or self.roles):
            raise ValueError("an anonymous route is public: auth false, no roles")
        return self

    @field_validator("path")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        segments = value.strip("/").split("/")
        for index, segment in enumerate(segments):
            if segment == "**" and index != len(segments) - 1:
                raise ValueError("'**' is only allowed as the last segment")
            if "{" in segment and not (segment.startswith("{") and segment.endswith("}")):
                raise ValueError(f"a parameter must be a whole segment: {segment!r}")
        return value


class RouteFile(BaseModel):
    """The whole YAML document."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class RouteMatch:
    """A route that matched, with its path parameters and the wildcard rest."""

    route: Route
    params: Mapping[str, str] = field(default_factory=dict)
    rest: str = ""


@dataclass(frozen=True)
class NoRoute:
    """Nothing matched the path (→ 404)."""


@dataclass(frozen=True)
class MethodNotAllowed:
    """The path matched but not the method (→ 405 with Allow)."""

    allowed: tuple[str, ...]


def _match_path(pattern: str, path: str) -> tuple[dict[str, str], str] | None:
    # "/" has no segment: it matches the root path only.
    pattern_segments = pattern.strip("/").split("/") if pattern.strip("/") else []
    path_segments = path.strip("/").split("/") if path.strip("/") else []
    params: dict[str, str] = {}
    for index, expected in enumerate(pattern_segments):
        if expected == "**":
            return params, "/".join(path_segments[index:])
        if index >= len(path_segments):
            return None
        actual = path_segments[index]
        if expected.startswith("{") and expected.endswith("}"):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    if len(path_segments) != len(pattern_segments):
        return None
    return params, ""


class RouteTable:
    """Ordered routes; `match` answers RouteMatch, NoRoute or MethodNotAllowed."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        names = [r.name for r in routes]
        if len(names) != len(set(names)):
            raise ValueError("route names must be unique")
        self.routes = routes

    def match(self, method: str, path: str) -> RouteMatch | NoRoute | MethodNotAllowed:
        """First route whose path and method match; HEAD is allowed wherever GET is."""
        allowed: list[str] = []
        for route in self.routes:
            found = _match_path(route.path, path)
            if found is None:
                continue
            methods = set(route.methods) | ({"HEAD"} if "GET" in route.methods else set())
            if method.upper() in methods:
                return RouteMatch(route=route, params=found[0], rest=found[1])
            allowed.extend(m for m in sorted(methods) if m not in allowed)
        return MethodNotAllowed(tuple(allowed)) if allowed else NoRoute()


def parse_routes(document: Any) -> RouteTable:
    """Validate a parsed YAML document into a RouteTable (pydantic errors name the bad field)."""
    return RouteTable(RouteFile.model_validate(document).routes)


def load_routes(path: Path) -> RouteTable:
    """Read and validate a routes YAML file."""
    return parse_routes(yaml.safe_load(path.read_text(encoding="utf-8")))
