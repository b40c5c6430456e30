"""ListUsers: keyset pages, filters, signed page tokens, concurrent inserts."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from shop_common.pagination import sign_token
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from shop_testing.page_tokens import forged_page_tokens
from user_service.domain.listing import UserFilter
from user_service.settings import DEV_PAGE_TOKEN_SECRET

from .conftest import bearer, create_user

pytestmark = pytest.mark.infra


async def _page(
    stub: user_pb2_grpc.UserServiceStub, token: str, request: user_pb2.ListUsersRequest
) -> tuple[list[user_pb2.User], str]:
    call = stub.ListUsers(request, metadata=bearer(token), timeout=10)
    users = [message.user async for message in call]
    trailer = dict(await call.trailing_metadata())
    return users, str(trailer.get("next-page-token", ""))


async def test_pages_cover_every_user_once_despite_concurrent_inserts(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    before = [await create_user(stub, admin_token, f"p{i}@example.com") for i in range(7)]
    seen: list[int] = []
    token = ""
    pages = 0
    inserted_during = []
    while True:
        users, token = await _page(
            stub, admin_token, user_pb2.ListUsersRequest(page_size=3, page_token=token)
        )
        seen.extend(u.id for u in users)
        pages += 1
        if pages == 1:  # inserts between pages land after the cursor: seen once, never twice
            inserted_during.append(await create_user(stub, admin_token, "late@example.com"))
        if not token:
            break
    expected = [u.id for u in before] + [u.id for u in inserted_during]
    assert seen == sorted(expected)
    assert pages == 3


async def test_filter_by_email_substring_and_role(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    await create_user(stub, admin_token, "anna@shop.test", roles=("admin",))
    await create_user(stub, admin_token, "bob@shop.test")
    await create_user(stub, admin_token, "carl@else.test", roles=("admin",))
    users, token = await _page(
        stub, admin_token, user_pb2.ListUsersRequest(filter="email:@SHOP.test role:admin")
    )
    assert [u.email for u in users] == ["anna@shop.test"]
    assert token == ""
    users, _ = await _page(stub, admin_token, user_pb2.ListUsersRequest(filter="email:%"))
    assert users == []  # LIKE wildcards are matched literally


@pytest.mark.parametrize(
    "request_",
    [
        user_pb2.ListUsersRequest(page_size=1001),
        user_pb2.ListUsersRequest(page_size=-1),
        user_pb2.ListUsersRequest(filter="colour:red"),
        user_pb2.ListUsersRequest(page_token="garbage"),
    ],
)
async def test_bad_list_requests_are_invalid_argument(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str, request_: user_pb2.ListUsersRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _page(stub, admin_token, request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_tampered_or_cross_filter_token_is_rejected(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    for i in range(3):
        await create_user(stub, admin_token, f"t{i}@example.com")
    _, token = await _page(stub, admin_token, user_pb2.ListUsersRequest(page_size=1))
    assert token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5] ^= 0x01  # flip one bit of the position
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for request in (
        user_pb2.ListUsersRequest(page_size=1, page_token=tampered),
        user_pb2.ListUsersRequest(page_size=1, page_token=token, filter="role:admin"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _page(stub, admin_token, request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_validly_signed_tokens_of_the_wrong_shape_are_invalid_argument_never_internal(
    stub: user_pb2_grpc.UserServiceStub, admin_token: str
) -> None:
    """The server signs with the development secret (these tests run in development), so the
    forgeries carry a valid HMAC: only the body's shape is wrong (issue 11)."""
    await create_user(stub, admin_token, "forged@example.com")
    valid = {"a": 0, "f": UserFilter().canonical}
    forged = forged_page_tokens(DEV_PAGE_TOKEN_SECRET, valid)
    assert len(forged) > 30
    for label, token in forged.items():
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _page(stub, admin_token, user_pb2.ListUsersRequest(page_token=token))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (label, info.value)
        details = info.value.details() or ""
        assert details.startswith("page_token"), (label, details)
        assert "asyncpg" not in details and "Traceback" not in details, label
    # The reference body itself is accepted, and the server still answers normally.
    users, _ = await _page(
        stub,
        admin_token,
        user_pb2.ListUsersRequest(
            page_token=sign_token(DEV_PAGE_TOKEN_SECRET, json.dumps(valid).encode())
        ),
    )
    assert [u.email for u in users] == ["forged@example.com"]
