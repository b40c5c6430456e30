"""POST /auth/token (OAuth2 password grant against the user service) and the JWKS endpoint."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qs

import grpc
import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from shop_common.web import ProblemError, problem_responses

from gateway.state import runtime_of

_log = structlog.get_logger(__name__)
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# Credentials the user service refuses (or cannot even read) are the client's fault: invalid_grant.
_REFUSED = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
_TOKEN_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["password"]},
        "username": {"type": "string", "minLength": 1, "maxLength": 320},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
    "required": ["grant_type", "username", "password"],
}


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 access token response."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class JsonWebKey(BaseModel):
    """One RSA public key (RFC 7517)."""

    kty: str
    kid: str
    use: str
    alg: str
    n: str
    e: str


class JsonWebKeySet(BaseModel):
    """The keys tokens may be signed with."""

    keys: list[JsonWebKey]


def _oauth_error(status: int, error: str, detail: str, **headers: str) -> ProblemError:
    return ProblemError(status, detail=detail, headers=headers, extensions={"error": error})


def _form_field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    if not values or not values[0]:
        raise _oauth_error(400, "invalid_request", f"the form field {name!r} is required")
    value = values[0]
    # Control characters (NUL above all) are never part of an email or a password we issue for.
    if len(value) > 1024 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _oauth_error(400, "invalid_request", f"the form field {name!r} is not valid")
    return value


router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Exchange a user's email and password for an RS256 access token",
    responses=problem_responses(400, 401, 415, 429, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": _TOKEN_FORM_SCHEMA}},
        }
    },
)
async def issue_token(request: Request, response: Response) -> TokenResponse:
    """OAuth2 password grant: the user service checks the password, the gateway signs.

    Throttled (gateway.login_throttle): an account or a client with too many failures is
    answered 429 with Retry-After, before the password reaches the user service.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise ProblemError(415, detail=f"send the grant as {FORM_MEDIA_TYPE}")
    try:
        form = parse_qs((await request.body()).decode("utf-8"), max_num_fields=16)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _oauth_error(400, "invalid_request", "the form could not be read") from exc
    grant_type = _form_field(form, "grant_type")
    if grant_type != "password":
        raise _oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
    username, password = _form_field(form, "username"), _form_field(form, "password")
    runtime = runtime_of(request)
    throttle = runtime.login_throttle
    client = runtime.settings.client_address(request.scope).address
    if throttle is not None:
        admission = await throttle.begin(username, client)
        if not admission.admitted:
            raise _oauth_error(
                429,
                "slow_down",
                "too many failed logins: wait before trying again",
                **{"Retry-After": str(admission.retry_after_seconds)},
            )
    try:
        user = await runtime.users.authenticate(username, password)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in _REFUSED:
            headers = {"WWW-Authenticate": 'Bearer realm="shop"'}
            if throttle is not None:
                headers.update((await throttle.failed(username, client)).headers())
            raise _oauth_error(
                401, "invalid_grant", "the email or password is wrong", **headers
            ) from exc
        if throttle is not None:
            await throttle.unjudged(username, client)
        _log.warning("authenticate_failed", code=exc.code().name, details=exc.details())
        raise ProblemError(
            503, detail="the user service is unavailable", headers={"Retry-After": "1"}
        ) from exc
    except Exception:  # no verdict on the password (not a cancellation: that is no answer)
        if throttle is not None:
            await throttle.unjudged(username, client)
        raise
    if throttle is not None:
        await throttle.succeeded(username, client)
    token = runtime.issuer.issue(str(user.id), list(user.roles))
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return TokenResponse(access_token=token, expires_in=runtime.issuer.ttl_seconds)


@router.get(
    "/.well-known/jwks.json",
    response_model=JsonWebKeySet,
    summary="The public keys that verify the gateway's tokens",
)
async def jwks(request: Request) -> dict[str, Any]:
    """Every trusted public key (the current and, during a rotation, the previous ones)."""
    return runtime_of(request).keys.jwks()
