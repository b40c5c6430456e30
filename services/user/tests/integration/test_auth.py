"""Authentication, authorization and rate limiting through the interceptors."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from user_service.server import UserServer

from .conftest import AUDIENCE, ISSUER, StartServer, bearer, create_user

pytestmark = pytest.mark.infra


async def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value.code()


def _alg_none_token() -> str:
    claims = {
        "sub": "1",
        "roles": ["admin"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    return jwt.encode(claims, key=None, algorithm="none", headers={"kid": "test-kid"})


@pytest.mark.parametrize(
    "case", ["missing", "garbage", "expired", "wrong_audience", "alg_none", "unknown_key"]
)
async def test_bad_tokens_are_unauthenticated(
    stub: user_pb2_grpc.UserServiceStub, signing_key: SigningKey, case: str
) -> None:
    tokens = {
        "garbage": "not.a.token",
        "expired": TokenIssuer(signing_key, ISSUER, AUDIENCE, ttl_seconds=-120).issue(
            "1", ["admin"]
        ),
        "wrong_audience": TokenIssuer(signing_key, ISSUER, "someone-else").issue("1", ["admin"]),
        "alg_none": _alg_none_token(),
        "unknown_key": TokenIssuer(generate_signing_key("other"), ISSUER, AUDIENCE).issue(
            "1", ["admin"]
        ),
    }
    metadata = bearer(tokens[case]) if case in tokens else ()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetUser(user_pb2.GetUserRequest(id=1), metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Traceback" not in (info.value.details() or "")


async def test_user_reads_and_updates_itself_but_nothing_more(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, issuer: TokenIssuer
) -> None:
    me = await create_user(stub, admin_token, "me@example.com")
    other = await create_user(stub, admin_token, "other@example.com")
    mine = bearer(issuer.issue(str(me.id), ["customer"]))
    assert (await stub.GetUser(user_pb2.GetUserRequest(id=me.id), metadata=mine)).user.id == me.id
    renamed = await stub.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=me.id, name="Me"), update_mask=FieldMask(paths=["name"])
        ),
        metadata=mine,
    )
    assert renamed.user.name == "Me"
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert await _code(stub.GetUser(user_pb2.GetUserRequest(id=other.id), metadata=mine)) == denied
    assert (
        await _code(stub.DeleteUser(user_pb2.DeleteUserRequest(id=other.id), metadata=mine))
        == denied
    )
    assert (
        await _code(stub.DeleteUser(user_pb2.DeleteUserRequest(id=me.id), metadata=mine)) == denied
    )
    self_promotion = stub.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=me.id, roles=["admin"]), update_mask=FieldMask(paths=["roles"])
        ),
        metadata=mine,
    )
    assert await _code(self_promotion) == denied
    listing = stub.ListUsers(user_pb2.ListUsersRequest(), metadata=mine)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        [m async for m in listing]
    assert info.value.code() == denied
    for roles in ([], ["user"]):  # minting accounts is an admin's job, with or without roles
        minted = stub.CreateUser(
            user_pb2.CreateUserRequest(
                email=f"minted{len(roles)}@example.com", name="M", roles=roles, password="pw-long-1"
            ),
            metadata=mine,
        )
        assert await _code(minted) == denied
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetUser(user_pb2.GetUserRequest(id=other.id + 1), metadata=bearer(admin_token))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # nothing was created
    assert (
        await stub.GetUser(user_pb2.GetUserRequest(id=me.id), metadata=bearer(admin_token))
    ).user.roles == []


async def test_rate_limit_per_caller_is_resource_exhausted(
    start_server: StartServer, admin_token: str, issuer: TokenIssuer
) -> None:
    server: UserServer = await start_server(rate_limit_per_second=0.001, rate_limit_burst=3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        request = user_pb2.GetUserRequest(id=424242)
        codes = []
        for _ in range(4):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetUser(request, metadata=bearer(admin_token))
            codes.append(info.value.code())
        assert codes == [grpc.StatusCode.NOT_FOUND] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        # Another caller has its own bucket.
        other = bearer(issuer.issue("555", ["admin"]))
        assert await _code(stub.GetUser(request, metadata=other)) == grpc.StatusCode.NOT_FOUND


async def test_a_registrar_creates_shopper_accounts_and_nothing_else(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, issuer: TokenIssuer
) -> None:
    """The web service's sign-up account holds `registrar` only: it opens shopper accounts
    (role `user`, or none) and may not grant any other role, read, list or delete."""
    registrar = bearer(issuer.issue("1000001", ["registrar"]))
    shopper = await stub.CreateUser(
        user_pb2.CreateUserRequest(
            email="shopper@example.com", name="S", roles=["user"], password="pw-long-1"
        ),
        metadata=registrar,
    )
    assert list(shopper.user.roles) == ["user"]
    denied = grpc.StatusCode.PERMISSION_DENIED
    for roles in (["admin"], ["user", "admin"], ["registrar"]):
        minted = stub.CreateUser(
            user_pb2.CreateUserRequest(
                email=f"boss{len(roles)}@example.com", name="B", roles=roles, password="pw-long-1"
            ),
            metadata=registrar,
        )
        assert await _code(minted) == denied
    read = stub.GetUser(user_pb2.GetUserRequest(id=shopper.user.id), metadata=registrar)
    assert await _code(read) == denied
    delete = stub.DeleteUser(user_pb2.DeleteUserRequest(id=shopper.user.id), metadata=registrar)
    assert await _code(delete) == denied
    listing = stub.ListUsers(user_pb2.ListUsersRequest(), metadata=registrar)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        [m async for m in listing]
    assert info.value.code() == denied
    # Nothing but the shopper was created.
    admin = bearer(admin_token)
    for offset in (1, 2, 3):
        missing = stub.GetUser(user_pb2.GetUserRequest(id=shopper.user.id + offset), metadata=admin)
        assert await _code(missing) == grpc.StatusCode.NOT_FOUND
