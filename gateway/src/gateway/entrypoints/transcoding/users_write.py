"""POST, PATCH and DELETE on /api/users (CreateUser, UpdateUser with a field mask, DeleteUser)."""

from __future__ import annotations

import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from shop_common.auth import Principal, account_creation_refusal
from shop_common.web import ProblemError, problem_responses

from gateway.entrypoints.transcoding.schemas import UserCreate, UserId, UserPublic, UserUpdate
from gateway.entrypoints.transcoding.user_calls import Caller, CallerDep, UserUpstream


def _caller_roles(request: Request, caller: Caller) -> frozenset[str]:
    """The caller's roles: the gateway's verified principal, else the token's unverified claim.

    Unverified claims may only refuse (a forged "admin" claim still meets the user service,
    which verifies the token itself); they never grant anything here.
    """
    principal = request.scope.get("state", {}).get("principal")
    if isinstance(principal, Principal):
        return frozenset(principal.roles)
    try:
        claims = jwt.decode(caller.token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return frozenset()
    roles = claims.get("roles")
    return (
        frozenset(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else frozenset()
    )


def add_write_routes(router: APIRouter, upstream: UserUpstream, *, prefix: str) -> None:
    """Register create, update and delete on router."""

    @router.post(
        "",
        status_code=201,
        summary="Create a user (CreateUser)",
        description=(
            "Admin only (accounts are made by an operator: a user minting accounts would also "
            "multiply its per-user rate limits), except that a `registrar` (the storefront's "
            "sign-up account) creates shopper accounts (roles: user) and nothing else. 409 when "
            "the email is taken (case-insensitively)."
        ),
        response_model=UserPublic,
        responses=problem_responses(400, 401, 403, 409, 422, 429, 503, 504),
    )
    async def create_user(request: Request, body: UserCreate, caller: CallerDep) -> JSONResponse:
        refusal = account_creation_refusal(_caller_roles(request, caller), body.roles)
        if refusal is not None:
            raise ProblemError(403, detail=refusal)
        user = await upstream.call(
            upstream.client.create_user,
            body.email,
            body.name,
            body.password,
            roles=body.roles,
            token=caller.token,
            timeout=upstream.timeout_seconds,
            request_id=caller.request_id,
        )
        return JSONResponse(
            user.to_dict(), status_code=201, headers={"Location": f"{prefix}/{user.id}"}
        )

    @router.patch(
        "/{user_id}",
        summary="Change some fields of a user (UpdateUser)",
        description=(
            "The keys present in the body become the update mask: only they change. Unknown "
            "keys, null values and an empty body are refused (422). A user may change its own "
            "email, name and password; roles need the admin role."
        ),
        response_model=UserPublic,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504),
    )
    async def update_user(user_id: UserId, body: UserUpdate, caller: CallerDep) -> JSONResponse:
        mask = body.update_mask
        user = await upstream.call(
            upstream.client.update_user,
            user_id,
            body.model_dump(include=set(mask)),
            mask,
            token=caller.token,
            timeout=upstream.timeout_seconds,
            request_id=caller.request_id,
        )
        return JSONResponse(user.to_dict())

    @router.delete(
        "/{user_id}",
        status_code=204,
        summary="Delete a user (DeleteUser)",
        description="Admin only.",
        response_class=Response,
        responses=problem_responses(401, 403, 404, 422, 429, 503, 504),
    )
    async def delete_user(user_id: UserId, caller: CallerDep) -> Response:
        await upstream.call(
            upstream.client.delete_user,
            user_id,
            token=caller.token,
            timeout=upstream.timeout_seconds,
            request_id=caller.request_id,
        )
        return Response(status_code=204)
