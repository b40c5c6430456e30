"""/api/users/** as REST over the user service's gRPC API (JSON in and out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from shop_common.clients.user import UserClient, UserPage
from shop_common.resilience import CircuitBreaker
from shop_common.web import problem_responses

from gateway.entrypoints.transcoding.schemas import PRINTABLE, UserId, UserPublic
from gateway.entrypoints.transcoding.schemas import UserPage as UserPageSchema
from gateway.entrypoints.transcoding.status import user_service_breaker
from gateway.entrypoints.transcoding.streaming import NDJSON, ClientBoundStream, ndjson_pages
from gateway.entrypoints.transcoding.updates import add_updates_route
from gateway.entrypoints.transcoding.user_calls import CallerDep, UserUpstream
from gateway.entrypoints.transcoding.users_write import add_write_routes

FilterTerm = Annotated[str | None, Query(max_length=320, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
_READ_PROBLEMS = problem_responses(400, 401, 403, 404, 429, 503, 504)


def build_users_router(
    client: UserClient | Callable[[], UserClient],
    *,
    breaker: CircuitBreaker | None = None,
    timeout_seconds: float | None = None,
    heartbeat_seconds: float = 15.0,
    prefix: str = "/api/users",
) -> APIRouter:
    """The transcoded user API; see the package docstring for what it needs from the app."""
    upstream = UserUpstream(
        client_of=client if callable(client) else (lambda: client),
        breaker=breaker or user_service_breaker(),
        timeout_seconds=timeout_seconds,
    )
    router = APIRouter(prefix=prefix, tags=["users"])
    add_updates_route(router, upstream, heartbeat_seconds=heartbeat_seconds)
    _add_list_route(router, upstream)

    @router.get(
        "/{user_id}",
        summary="Get a user (GetUser)",
        description="An admin may read anyone; a user only itself.",
        response_model=UserPublic,
        responses=_READ_PROBLEMS,
    )
    async def get_user(user_id: UserId, caller: CallerDep) -> JSONResponse:
        user = await upstream.call(
            upstream.client.get_user,
            user_id,
            token=caller.token,
            timeout=upstream.timeout_seconds,
            request_id=caller.request_id,
        )
        return JSONResponse(user.to_dict())

    add_write_routes(router, upstream, prefix=prefix)
    # HEAD too, as the gateway's route table allows it wherever GET is (kept out of the OpenAPI
    # document: one operation id per function).
    router.add_api_route("/{user_id}", get_user, methods=["HEAD"], include_in_schema=False)
    return router


def _list_filter(filter: str, email: str | None, role: str | None) -> str:
    terms = [filter.strip()] if filter.strip() else []
    terms += [f"email:{email}"] if email else []
    terms += [f"role:{role}"] if role else []
    return " ".join(terms)


def _add_list_route(router: APIRouter, upstream: UserUpstream) -> None:
    @router.get(
        "",
        summary="List users (ListUsers): NDJSON stream or paged JSON",
        description=(
            "With `Accept: application/x-ndjson` every matching user is streamed, one JSON "
            "object per line, fetching page after page of `page_size`; an error after the first "
            'line ends the stream with a line `{"error": <problem>}`. Otherwise one page is '
            "returned as JSON with the token of the next page. Admin only."
        ),
        response_model=UserPageSchema,
        responses={
            200: {
                "content": {
                    NDJSON: {
                        "schema": {"$ref": "#/components/schemas/UserPublic"},
                        "example": '{"id":42,"email":"ada@example.com","name":"Ada",...}\n',
                    }
                }
            },
            **problem_responses(400, 401, 403, 422, 429, 503, 504),
        },
    )
    async def list_users(
        request: Request,
        caller: CallerDep,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
        page_token: Annotated[str, Query(max_length=4096, pattern=PRINTABLE)] = "",
        filter: Annotated[
            str,
            Query(
                max_length=1024,
                pattern=PRINTABLE,
                description="Raw ListUsers filter: `email:<substring>` and/or `role:<role>`",
            ),
        ] = "",
        email: Annotated[
            FilterTerm, Query(description="Email substring (case-insensitive)")
        ] = None,
        role: Annotated[FilterTerm, Query(description="Only users holding this role")] = None,
    ) -> Response:
        query = _list_filter(filter, email, role)

        async def page_at(token: str) -> UserPage:
            return await upstream.call(
                upstream.client.list_page,
                token=caller.token,
                page_size=page_size,
                page_token=token,
                filter=query,
                timeout=upstream.timeout_seconds,
                request_id=caller.request_id,
            )

        first = await page_at(page_token)  # errors before the first byte keep their status
        if request.method == "GET" and NDJSON in request.headers.get("accept", ""):
            return ClientBoundStream(ndjson_pages(first, page_at), media_type=NDJSON, kind="ndjson")
        body: dict[str, Any] = {
            "users": [u.to_dict() for u in first.users],
            "next_page_token": first.next_page_token or None,
        }
        return JSONResponse(body)

    router.add_api_route("", list_users, methods=["HEAD"], include_in_schema=False)
