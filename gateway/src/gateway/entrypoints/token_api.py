"""POST /auth/token (OAuth2 password grant: the form read here, the use case in
gateway.service_layer.login) and the JWKS endpoint. Module-level router; each endpoint gets only
the object it needs (gateway.entrypoints.context)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from shop_common.web import ProblemError, problem_responses

from gateway.domain.login import (
    AuthenticatorUnavailableError,
    LoginRefusedError,
    LoginThrottledError,
)
from gateway.entrypoints.context import jwks_of, login_service_of, settings_of
from gateway.service_layer.login import LoginService
from gateway.settings import Settings

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
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
async def issue_token(
    request: Request,
    response: Response,
    login: Annotated[LoginService, Depends(login_service_of)],
    settings: Annotated[Settings, Depends(settings_of)],
) -> TokenResponse:
    """OAuth2 password grant: the user service checks the password, the gateway signs.

    Throttled (gateway.service_layer.login): an account or a client with too many failures is
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
    client = settings.client_address(request.scope).address
    try:
        issued = await login.login(username, password, client)
    except LoginThrottledError as exc:
        raise _oauth_error(
            429,
            "slow_down",
            "too many failed logins: wait before trying again",
            **{"Retry-After": str(exc.retry_after_seconds)},
        ) from exc
    except LoginRefusedError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="shop"'}
        if exc.failure is not None:
            headers.update(exc.failure.headers())
        raise _oauth_error(
            401, "invalid_grant", "the email or password is wrong", **headers
        ) from exc
    except AuthenticatorUnavailableError as exc:
        raise ProblemError(
            503, detail="the user service is unavailable", headers={"Retry-After": "1"}
        ) from exc
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get(
    "/.well-known/jwks.json",
    response_model=JsonWebKeySet,
    summary="The public keys that verify the gateway's tokens",
)
async def jwks(document: Annotated[dict[str, Any], Depends(jwks_of)]) -> dict[str, Any]:
    """Every trusted public key (the current and, during a rotation, the previous ones)."""
    return document
