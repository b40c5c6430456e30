"""RFC 9457 problem details: one application/problem+json shape for every HTTP error.

The module is long because every way a request can fail (validation, HTTP errors, domain
errors, outages with Retry-After, the last-resort 500) maps to a problem here, and the reader
should find all of them together."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from shop_common.logging import get_logger
from shop_common.web.paths import public_path

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = get_logger(__name__)


class ProblemError(Exception):
    """Raise at a domain edge to answer with a problem+json response of this status."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        type: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title or status_phrase(status)
        self.detail = detail
        self.type = type
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})
        super().__init__(f"{status} {self.title}" + (f": {detail}" if detail else ""))


class ProblemResponse(JSONResponse):
    """A JSONResponse with the problem+json media type."""

    media_type = PROBLEM_MEDIA_TYPE


def status_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status ("Error" for unknown codes)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    type: str = "about:blank",
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of a problem; members with no value are left out."""
    body: dict[str, Any] = {"type": type, "title": title or status_phrase(status), "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    return body


def problem_response(
    request: Request | None,
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """A problem+json response; instance and request_id come from the request when given."""
    ext = dict(extensions or {})
    instance = None
    if request is not None:
        instance = public_path(request)  # /api/orders/7, not the service's own /orders/7
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            ext.setdefault("request_id", request_id)
    if status < 200 or status in (204, 304):
        return Response(status_code=status, headers=dict(headers or {}))
    body = problem_body(status, title, detail, type=type, instance=instance, extensions=ext)
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this path (Starlette's Allow names only the first)."""
    methods: set[str] = set()
    for route in getattr(request.app.router, "routes", ()):
        match, _ = route.matches(request.scope)
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods |= set(route_methods)
    return sorted(methods)


async def _problem_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        exc.title,
        exc.detail,
        type=exc.type,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    detail: str | None = None
    extensions: dict[str, Any] = {}
    raw: Any = exc.detail  # FastAPI's HTTPException allows any JSON-able detail
    if isinstance(raw, str):
        # Starlette fills detail with the reason phrase; repeating the title says nothing.
        detail = None if raw == status_phrase(exc.status_code) else raw
    elif raw is not None:
        extensions["errors"] = raw
    return problem_response(
        request, exc.status_code, detail=detail, headers=headers, extensions=extensions
    )


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without the offending input (which may be a password or a token)."""
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        request,
        422,
        detail="The request is not valid.",
        extensions={"errors": validation_errors(exc)},
    )


async def _unhandled_handler(request: Request, exc: Exception) -> Response:
    _log.error("unhandled_exception", path=request.url.path, exc_info=exc)
    return problem_response(request, 500)


def install_problem_details(app: FastAPI) -> None:
    """Answer every error FastAPI/Starlette raises (and ProblemError) with problem+json."""
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
    _document_problems(app)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    **PROBLEM_SCHEMA,
    "title": "ValidationProblem",
    "properties": {
        **PROBLEM_SCHEMA["properties"],
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
                "required": ["loc", "msg", "type"],
            },
        },
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting these statuses as problem+json."""
    return {
        status: {
            "description": status_phrase(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers send: problem+json, not FastAPI's 422."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        schemas["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses") if isinstance(operation, dict) else None
                if responses and "422" in responses:
                    responses["422"] = {
                        "description": "Validation Error",
                        "content": {
                            PROBLEM_MEDIA_TYPE: {
                                "schema": {"$ref": "#/components/schemas/ValidationProblem"}
                            }
                        },
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
                schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
