"""Domain errors → problem+json: one mapping, for handlers and for errors inside a stream."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from shop_common.web import ProblemError
from shop_common.web.problems import problem_response

from web_service.domain.errors import AccountExists, InvalidSignUp, Refused, Unavailable, WebError


def as_problem(exc: WebError) -> ProblemError:
    """The problem a domain error answers with (a backend's 5xx is never passed on as such)."""
    if isinstance(exc, InvalidSignUp):
        return ProblemError(422, detail=str(exc))
    if isinstance(exc, AccountExists):
        return ProblemError(409, detail=str(exc))
    if isinstance(exc, Refused):
        return ProblemError(exc.status if 400 <= exc.status < 500 else 502, detail=exc.detail)
    if isinstance(exc, Unavailable):
        retry = str(max(1, int(exc.retry_after)))
        return ProblemError(503, detail=exc.detail, headers={"Retry-After": retry})
    return ProblemError(500, detail="unexpected error")


async def _web_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    problem = as_problem(exc)
    return problem_response(
        request, problem.status, problem.title, problem.detail, headers=problem.headers
    )


def install_web_errors(app: FastAPI) -> None:
    """Map every WebError raised by a route."""
    app.add_exception_handler(WebError, _web_error)
