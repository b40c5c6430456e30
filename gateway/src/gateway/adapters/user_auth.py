"""The user service as the login's authenticator: its gRPC Authenticate, its refusals told apart
from its failures (a refusal counts against the client, a failure is nobody's fault)."""

from __future__ import annotations

import grpc
from shop_common.clients.user import UserClient

from gateway.domain.login import (
    AuthenticatedUser,
    AuthenticatorUnavailableError,
    CredentialsRefusedError,
)

# Credentials the user service refuses (or cannot even read) are the client's fault: invalid_grant.
REFUSED = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


class UserServiceAuthenticator:
    """Authenticate over the app's shared UserClient (its own retries and per-call timeout)."""

    def __init__(self, users: UserClient) -> None:
        self._users = users

    async def authenticate(self, username: str, password: str) -> AuthenticatedUser:
        """The user; CredentialsRefusedError or AuthenticatorUnavailableError on a gRPC error."""
        try:
            user = await self._users.authenticate(username, password)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in REFUSED:
                raise CredentialsRefusedError(exc.code().name) from exc
            raise AuthenticatorUnavailableError(exc.code().name, exc.details()) from exc
        return AuthenticatedUser(str(user.id), tuple(user.roles))
