"""Every unary RPC over a real channel against real PostgreSQL, with its status codes."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from shop_common.auth import TokenIssuer
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from user_service.server import UserServer

from .conftest import bearer, create_user

pytestmark = pytest.mark.infra


async def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value.code()


async def test_create_then_get_returns_the_user_without_secrets(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    created = await create_user(stub, admin_token, "Ada@Example.com", roles=("customer",))
    got = await stub.GetUser(user_pb2.GetUserRequest(id=created.id), metadata=bearer(admin_token))
    assert got.user == created
    assert (got.user.email, got.user.name, list(got.user.roles)) == (
        "Ada@Example.com",
        "Ada",
        ["customer"],
    )
    assert got.user.created_at.seconds > 0
    assert "password" not in str(got)


async def test_duplicate_email_case_insensitive_is_already_exists(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    await create_user(stub, admin_token, "dup@example.com")
    code = await _code(create_user(stub, admin_token, "DUP@example.com"))
    assert code == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("email", "name", "password"),
    [
        ("not-an-email", "Ada", "long enough"),
        ("a@example.com", "  ", "long enough"),
        ("b@example.com", "Ada", "short"),
    ],
)
async def test_bad_input_is_invalid_argument(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, email: str, name: str, password: str
) -> None:
    code = await _code(create_user(stub, admin_token, email, name=name, password=password))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_missing_user_is_not_found(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    assert (
        await _code(stub.GetUser(user_pb2.GetUserRequest(id=987654), metadata=bearer(admin_token)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await _code(
            stub.DeleteUser(user_pb2.DeleteUserRequest(id=987654), metadata=bearer(admin_token))
        )
        == grpc.StatusCode.NOT_FOUND
    )


async def test_update_applies_exactly_the_mask(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    user = await create_user(stub, admin_token, "mask@example.com", name="Before")
    response = await stub.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=user.id, name="After", email="ignored@example.com"),
            update_mask=FieldMask(paths=["name"]),
        ),
        metadata=bearer(admin_token),
    )
    assert (response.user.name, response.user.email) == ("After", "mask@example.com")
    assert response.user.updated_at.ToDatetime() >= user.updated_at.ToDatetime()


async def test_empty_mask_updates_every_non_default_field(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    user = await create_user(
        stub, admin_token, "empty@example.com", name="Before", roles=("customer",)
    )
    response = await stub.UpdateUser(
        user_pb2.UpdateUserRequest(user=user_pb2.User(id=user.id, email="new@example.com")),
        metadata=bearer(admin_token),
    )
    # email was set, name and roles were default: only email changes.
    assert (response.user.email, response.user.name, list(response.user.roles)) == (
        "new@example.com",
        "Before",
        ["customer"],
    )


async def test_unknown_mask_path_is_invalid_argument(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    user = await create_user(stub, admin_token, "unknown@example.com")
    call = stub.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=user.id), update_mask=FieldMask(paths=["created_at"])
        ),
        metadata=bearer(admin_token),
    )
    assert await _code(call) == grpc.StatusCode.INVALID_ARGUMENT


async def test_password_update_then_authenticate(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, issuer: TokenIssuer
) -> None:
    user = await create_user(stub, admin_token, "login@example.com", password="first password")
    own = issuer.issue(str(user.id), [])
    await stub.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=user.id),
            update_mask=FieldMask(paths=["password"]),
            password="second password",
        ),
        metadata=bearer(own),
    )
    ok = await stub.Authenticate(
        user_pb2.AuthenticateRequest(email="LOGIN@example.com", password="second password")
    )
    assert ok.user.id == user.id
    wrong = stub.Authenticate(
        user_pb2.AuthenticateRequest(email="login@example.com", password="first password")
    )
    assert await _code(wrong) == grpc.StatusCode.UNAUTHENTICATED
    nobody = stub.Authenticate(
        user_pb2.AuthenticateRequest(email="nobody@example.com", password="x" * 10)
    )
    assert await _code(nobody) == grpc.StatusCode.UNAUTHENTICATED


async def test_nul_bytes_are_refused_never_internal(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    """PostgreSQL cannot store NUL: each RPC refuses it before the driver would fail with INTERNAL."""
    login = stub.Authenticate(
        user_pb2.AuthenticateRequest(email="nul\x00@example.com", password="x" * 10)
    )
    assert await _code(login) == grpc.StatusCode.UNAUTHENTICATED
    create = create_user(stub, admin_token, "nul\x00@example.com")
    assert await _code(create) == grpc.StatusCode.INVALID_ARGUMENT
    named = create_user(stub, admin_token, "named@example.com", name="Ada\x00")
    assert await _code(named) == grpc.StatusCode.INVALID_ARGUMENT
    listing = stub.ListUsers(
        user_pb2.ListUsersRequest(filter="email:nul\x00"), metadata=bearer(admin_token)
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in listing:
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_delete_then_get_is_not_found(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    user = await create_user(stub, admin_token, "gone@example.com")
    await stub.DeleteUser(user_pb2.DeleteUserRequest(id=user.id), metadata=bearer(admin_token))
    assert (
        await _code(stub.GetUser(user_pb2.GetUserRequest(id=user.id), metadata=bearer(admin_token)))
        == grpc.StatusCode.NOT_FOUND
    )


async def test_every_change_writes_an_outbox_envelope(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, database_url: str
) -> None:
    user = await create_user(stub, admin_token, "outbox@example.com")
    await stub.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=user.id, name="Renamed"), update_mask=FieldMask(paths=["name"])
        ),
        metadata=(*bearer(admin_token), ("x-request-id", "req-outbox-1")),
    )
    await stub.DeleteUser(user_pb2.DeleteUserRequest(id=user.id), metadata=bearer(admin_token))
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT exchange, routing_key, aggregate_id, envelope FROM outbox ORDER BY id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(r.exchange, r.routing_key, r.aggregate_id) for r in rows] == [
        ("users", "user.created", str(user.id)),
        ("users", "user.updated", str(user.id)),
        ("users", "user.deleted", str(user.id)),
    ]
    updated = rows[1].envelope
    assert updated["payload"] == {
        "user_id": user.id,
        "email": "outbox@example.com",
        "name": "Renamed",
        "roles": [],
    }
    assert updated["correlation_id"] == "req-outbox-1"
    assert set(updated) == {
        "event_id",
        "event_type",
        "occurred_at",
        "version",
        "correlation_id",
        "causation_id",
        "payload",
    }
    assert rows[2].envelope["payload"] == {"user_id": user.id}


async def test_failed_change_writes_no_outbox_row(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, database_url: str, server: UserServer
) -> None:
    await create_user(stub, admin_token, "once@example.com")
    with pytest.raises(grpc.aio.AioRpcError):
        await create_user(stub, admin_token, "ONCE@example.com")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    finally:
        await engine.dispose()
    assert count == 1


async def test_concurrent_gets_share_queries_and_each_caller_gets_its_own_user(
    server: UserServer, stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    users = [await create_user(stub, admin_token, f"many{n}@example.com") for n in range(4)]
    ids = [user.id for user in users] * 10 + [999_999]
    queries_before = server.repository.reader.queries  # type: ignore[union-attr]
    outcomes = await asyncio.gather(
        *(
            stub.GetUser(user_pb2.GetUserRequest(id=i), metadata=bearer(admin_token), timeout=10)
            for i in ids
        ),
        return_exceptions=True,
    )
    by_id = {user.id: user for user in users}
    for user_id, outcome in zip(ids[:-1], outcomes[:-1], strict=True):
        assert not isinstance(outcome, BaseException)
        assert outcome.user == by_id[user_id]
    assert isinstance(outcomes[-1], grpc.aio.AioRpcError)
    assert outcomes[-1].code() == grpc.StatusCode.NOT_FOUND
    # 41 calls in flight at once did not take 41 queries.
    assert server.repository.reader.queries - queries_before < len(ids)  # type: ignore[union-attr]
