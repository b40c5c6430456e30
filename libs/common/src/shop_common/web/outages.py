"""A dependency that cannot serve now answers 503 + Retry-After (problem+json), never a bare 500.

`install_outage_problems(app, service="payment")` maps SQLAlchemy errors whose SQLSTATE says the
database is unavailable (and pool timeouts, refused connections) to 503; any other database error
stays a logged 500 with no detail, as `install_problem_details` answers it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from sqlalchemy import exc as sa
from starlette.responses import Response

from shop_common.logging import get_logger
from shop_common.web.problems import problem_response

PROBLEM_BASE = "https://shop.example/problems/"
# SQLSTATE classes meaning "cannot serve now", not "this statement is wrong": connection
# exception, insufficient resources, operator intervention, and 55000 (e.g. a database not
# accepting connections).
OUTAGE_SQLSTATES = ("08", "53", "57", "55000")
_log = get_logger(__name__)


def is_database_outage(exc: BaseException) -> bool:
    """True when exc says the database is unreachable or refusing work for now."""
    if isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.TimeoutError):
        return True
    if not isinstance(exc, sa.DBAPIError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    return exc.connection_invalidated or sqlstate.startswith(OUTAGE_SQLSTATES)


def install_outage_problems(app: FastAPI, *, service: str, retry_after_seconds: int = 2) -> None:
    """Register the handlers (after install_problem_details, which answers everything else)."""
    headers = {"Retry-After": str(retry_after_seconds)}

    async def database_error(request: Request, exc: Exception) -> Response:
        if not is_database_outage(exc):
            _log.error("database_error", path=request.url.path, exc_info=exc)
            return problem_response(request, 500)
        _log.warning("database_unavailable", path=request.url.path, error=repr(exc))
        return problem_response(
            request,
            503,
            detail=f"the {service} database is unavailable",
            type=PROBLEM_BASE + "database-unavailable",
            headers=headers,
        )

    async def connection_refused(request: Request, exc: Exception) -> Response:
        _log.warning("dependency_unreachable", path=request.url.path, error=repr(exc))
        return problem_response(
            request,
            503,
            detail=f"a dependency of the {service} service is unreachable",
            headers=headers,
        )

    app.add_exception_handler(sa.DBAPIError, database_error)
    app.add_exception_handler(sa.TimeoutError, database_error)
    app.add_exception_handler(ConnectionError, connection_refused)
