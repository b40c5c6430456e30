"""The request pipeline as pure ASGI: path → route → auth → rate limit → cache → upstream → reply.

Every request's path is first put in its one canonical form (gateway.domain.paths): a path without
one is refused with 400, and from then on scope["path"] and scope["raw_path"] hold the canonical
path, so the route table, the rate limit, the cache and the FastAPI app below all see the same
path, and the backend gets exactly the path the route matched (its prefix stripped).

Paths the route table does not know fall through to the FastAPI app (its own endpoints, and
its 404). Transcoded routes run their pipeline here too and then call the FastAPI app, where
the transcoding router answers with the principal in `scope["state"]`.

The module is long because it is one request's way through every step, read top to bottom
in one module (the hot path); the decisions it calls are in domain/ and service_layer/.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter
from shop_common.auth import Principal
from shop_common.observability import name_request_span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.bootstrap import App
from gateway.domain.access import ForbiddenError, UnauthorizedError, authorize
from gateway.domain.errors import (
    RateLimiterUnavailableError,
    ServiceUnavailableError,
    UpstreamError,
)
from gateway.domain.headers import upstream_request_headers
from gateway.domain.paths import PathRefusedError, canonical_path, check_query, decoded_path
from gateway.domain.redirects import public_headers
from gateway.domain.routes import MethodNotAllowed, NoRoute, RouteMatch
from gateway.entrypoints.context import AppHolder
from gateway.entrypoints.replies import Reply, header_value, send_problem, send_reply
from gateway.entrypoints.transcoded import call_app
from gateway.settings import Settings

RATE_LIMITED = Counter(
    "gateway_rate_limit_rejections_total",
    "Requests refused by the rate limit, by route.",
    ["route"],
)
PATHS_REFUSED = Counter(
    "gateway_paths_refused_total",
    "Requests refused with 400 because their path or query has no canonical form.",
)
OPERATOR_PATHS = frozenset({"/metrics"})
_CONDITIONAL = frozenset({"if-none-match", "if-modified-since"})
_CREDENTIALS = frozenset({"authorization", "cookie"})  # never sent on an anonymous route


class ClientGoneError(Exception):
    """The client disconnected before its request body arrived: nothing is forwarded."""


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """Stands in scope["route"] so metrics and logs label by the gateway route's pattern (the
    server span is named after it too)."""

    path_format: str


def _identity(principal: Principal | None, scope: Scope, settings: Settings) -> str:
    if principal is not None:
        return f"user:{principal.subject}"
    # The client as TRUSTED_PROXIES lets the gateway see it (gateway.domain.forwarding), not the
    # X-Forwarded-For of whoever connected.
    return f"ip:{settings.client_address(scope).address}"


class GatewayPipeline:
    """ASGI middleware in front of the FastAPI router."""

    def __init__(self, app: ASGIApp, *, holder: AppHolder) -> None:
        self.app = app
        self.holder = holder
        self._labels: dict[str, RouteLabel] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.holder.app
        if scope["type"] != "http" or runtime is None:
            await self.app(scope, receive, send)
            return
        try:
            # (httpx's ASGI transport puts the query in raw_path too: it is not part of the path.)
            raw = (scope.get("raw_path") or b"").decode("latin-1").partition("?")[0]
            path = canonical_path(raw or scope["path"])
            check_query(scope["query_string"].decode("latin-1"))
        except PathRefusedError as exc:
            PATHS_REFUSED.inc()
            await send_problem(scope, receive, send, 400, str(exc))
            return
        scope["path"], scope["raw_path"] = decoded_path(path), path.encode("ascii")
        if path in OPERATOR_PATHS and not runtime.settings.is_operator(scope):
            # The gateway's own metrics name every backend instance's address: they are for
            # the operators' networks (METRICS_NETWORKS), and do not exist for anyone else.
            await send_problem(scope, receive, send, 404)
            return
        found = runtime.routes.match(scope["method"], path)
        if isinstance(found, NoRoute):
            await self.app(scope, receive, send)
            return
        if isinstance(found, MethodNotAllowed):
            allow = ", ".join(found.allowed)
            await send_problem(scope, receive, send, 405, headers={"Allow": allow})
            return
        route = found.route
        label = self._labels.get(route.path)
        if label is None:
            label = self._labels[route.path] = RouteLabel(route.path)
        scope["route"] = label
        # The server span (tracing on) gets the same label: "POST /api/orders/**", http.route.
        name_request_span(scope["method"], label.path_format)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            # An anonymous route answers everyone alike: a token on it is neither read nor sent on.
            principal = (
                None
                if route.anonymous
                else authorize(route, header_value(headers, "authorization"), runtime.verifier)
            )
        except UnauthorizedError as exc:
            challenge = {"WWW-Authenticate": exc.www_authenticate}
            await send_problem(scope, receive, send, 401, exc.reason, headers=challenge)
            return
        except ForbiddenError as exc:
            await send_problem(scope, receive, send, 403, str(exc))
            return
        scope.setdefault("state", {})["principal"] = principal
        limit_headers: list[tuple[str, str]] = []
        if route.rate_limit is not None:
            try:
                decision = await runtime.rate_limits.check(
                    _identity(principal, scope, runtime.settings), route.name, route.rate_limit
                )
            except RateLimiterUnavailableError:
                await send_problem(
                    scope,
                    receive,
                    send,
                    503,
                    "the rate limiter is unavailable",
                    headers={"Retry-After": "1"},
                )
                return
            limit_headers = list(decision.headers().items())
            if not decision.allowed:
                RATE_LIMITED.labels(route.name).inc()
                await send_problem(
                    scope, receive, send, 429, "rate limit exceeded", extra=limit_headers
                )
                return
        if limit_headers:
            send = _with_headers(send, limit_headers)
        try:
            reply = await self._reply(runtime, found, principal, headers, scope, receive, send)
        except ServiceUnavailableError as exc:
            retry_after = {"Retry-After": str(exc.retry_after_seconds)}
            await send_problem(scope, receive, send, 503, exc.detail, headers=retry_after)
            return
        except ClientGoneError:
            return  # a half-received body is never sent on, and nobody is left to answer
        except UpstreamError as exc:
            await send_problem(scope, receive, send, exc.status, exc.detail)
            return
        if reply is not None:
            await send_reply(send, reply, head_only=scope["method"] == "HEAD")

    async def _reply(
        self,
        runtime: App,
        match: RouteMatch,
        principal: Principal | None,
        headers: list[tuple[str, str]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> Reply | None:
        route = match.route
        cacheable = scope["method"] == "GET" and route.cache_ttl_seconds > 0
        if route.transcode is not None and not cacheable:
            await call_app(self.app, scope, receive, send)  # streams straight to the client
            return None
        if route.transcode is not None:

            async def fetch() -> Reply:
                return await call_app(self.app, scope, receive, None)

        else:
            body = await _read_body(receive) if scope["method"] not in ("GET", "HEAD") else None
            dropped = (_CONDITIONAL if cacheable else frozenset()) | (
                _CREDENTIALS if route.anonymous else frozenset()
            )
            upstream_headers = upstream_request_headers(
                [(k, v) for k, v in headers if k.lower() not in dropped],
                client_ip=runtime.settings.client_address(scope),
                scheme=scope.get("scheme", "http"),
                host=header_value(headers, "host") or "",
                request_id=scope["state"].get("request_id", ""),
                user_id=principal.subject if principal is not None else None,
                roles=sorted(principal.roles) if principal is not None else (),
                prefix=route.strip_prefix,
            )
            # The canonical path the route matched, exactly (gateway.domain.paths), minus the prefix.
            path_qs = scope["raw_path"].decode("ascii")
            if route.strip_prefix:
                path_qs = path_qs.removeprefix(route.strip_prefix) or "/"
            if scope["query_string"]:
                path_qs += "?" + scope["query_string"].decode("latin-1")
            backend = runtime.upstreams[route.backend]
            base = runtime.settings.public_base_url
            public_base_url = str(base) if base is not None else None

            async def fetch() -> Reply:
                answer = await backend.call(
                    scope["method"],
                    path_qs,
                    upstream_headers,
                    body,
                    timeout_seconds=route.timeout_seconds,
                    retries=route.retries,
                    stream=route.stream,
                )
                try:
                    out_headers = public_headers(
                        answer.status,
                        answer.headers,
                        instance_url=answer.instance_url,
                        prefix=route.strip_prefix,
                        public_base_url=public_base_url,
                    )
                except UpstreamError:
                    answer.body.release()
                    raise
                return Reply(answer.status, out_headers, answer.body)

        if not cacheable:
            return await fetch()
        return await runtime.cache.serve(
            match,
            scope["path"],
            scope["query_string"].decode("latin-1"),
            headers,
            principal.subject if principal is not None else None,
            fetch,
        )


def _with_headers(send: Send, extra: list[tuple[str, str]]) -> Send:
    """send, adding headers to the response start (whoever answers: proxy, cache or router)."""
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *encoded]
        await send(message)

    return sending


async def _read_body(receive: Receive) -> bytes:
    """The request body (the body-size middleware outside has already bounded it)."""
    parts: list[bytes] = []
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts)
