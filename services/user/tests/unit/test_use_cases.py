"""Every use case of service_layer/users.py against the in-memory fakes (fakes.py): happy paths,
domain errors, authorization, field masks, paging, and which changes commit an event."""

from __future__ import annotations

import pytest
from shop_common.auth import Principal
from user_service.domain.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from user_service.domain.listing import DEFAULT_PAGE_SIZE
from user_service.domain.model import User, UserEventType

from .fakes import World, make_world

ADMIN = Principal("1000000", frozenset({"admin"}))


def user(user_id: int) -> Principal:
    return Principal(str(user_id), frozenset())


@pytest.fixture
def world() -> World:
    return make_world()


async def create(
    world: World,
    email: str = "ada@example.com",
    *,
    name: str = "Ada",
    roles: tuple[str, ...] = (),
    password: str = "correct horse",
    request_id: str | None = "req-1",
) -> User:
    return await world.service.create(
        ADMIN, email=email, name=name, roles=roles, password=password, request_id=request_id
    )


def events(world: World) -> list[tuple[UserEventType, int, str | None]]:
    return [(e.event_type, e.user.id, e.correlation_id) for e in world.store.events]


# --- CreateUser ------------------------------------------------------------------------------


async def test_create_stores_the_validated_user_a_hash_and_one_created_event(
    world: World,
) -> None:
    created = await create(world, "  ada@example.com ", name=" Ada ", roles=("b", "a", "b"))
    assert (created.email, created.name, created.roles) == ("ada@example.com", "Ada", ("a", "b"))
    assert world.store.rows[created.id].password_hash == "hashed:correct horse"
    assert events(world) == [(UserEventType.CREATED, created.id, "req-1")]
    assert world.units[-1].committed


async def test_create_with_a_taken_email_is_already_exists_and_commits_nothing(
    world: World,
) -> None:
    first = await create(world, "ada@example.com")
    with pytest.raises(AlreadyExists):
        await create(world, "ADA@Example.com", name="Other")
    assert list(world.store.rows) == [first.id]
    assert events(world) == [(UserEventType.CREATED, first.id, "req-1")]
    assert not world.units[-1].committed


async def test_create_needs_admin_and_refuses_before_hashing(world: World) -> None:
    with pytest.raises(PermissionDenied):
        await world.service.create(
            user(1),
            email="a@example.com",
            name="A",
            roles=(),
            password="long enough",
            request_id=None,
        )
    assert world.hasher.hashed == [] and world.units == []


REGISTRAR = Principal("1000001", frozenset({"registrar"}))


@pytest.mark.parametrize("roles", [(), ("user",), ("user", "user")])
async def test_a_registrar_creates_shopper_accounts(world: World, roles: tuple[str, ...]) -> None:
    created = await world.service.create(
        REGISTRAR,
        email="shopper@example.com",
        name="S",
        roles=roles,
        password="long enough",
        request_id=None,
    )
    assert created.roles == tuple(sorted(set(roles)))
    assert events(world) == [(UserEventType.CREATED, created.id, None)]


@pytest.mark.parametrize("roles", [("admin",), ("user", "admin"), ("registrar",), ("support",)])
async def test_a_registrar_grants_no_role_but_user_and_is_refused_before_hashing(
    world: World, roles: tuple[str, ...]
) -> None:
    with pytest.raises(PermissionDenied, match="shopper accounts only"):
        await world.service.create(
            REGISTRAR,
            email="s@example.com",
            name="S",
            roles=roles,
            password="long enough",
            request_id=None,
        )
    assert world.hasher.hashed == [] and world.units == []


async def test_a_registrar_may_do_nothing_else_an_admin_may(world: World) -> None:
    target = await create(world, "ada@example.com")
    with pytest.raises(PermissionDenied):
        await world.service.get(REGISTRAR, target.id)
    with pytest.raises(PermissionDenied):
        await world.service.delete(REGISTRAR, target.id, request_id=None)
    with pytest.raises(PermissionDenied):
        await world.service.update(
            REGISTRAR,
            target.id,
            paths=["roles"],
            email="",
            name="",
            roles=["admin"],
            password="",
            request_id=None,
        )


@pytest.mark.parametrize(
    ("email", "name", "roles", "password"),
    [
        ("not-an-email", "Ada", (), "long enough"),
        ("a@example.com", "  ", (), "long enough"),
        ("a@example.com", "Ada", ("Bad Role",), "long enough"),
        ("a@example.com", "Ada", (), "short"),
    ],
)
async def test_create_refuses_invalid_input_before_hashing(
    world: World, email: str, name: str, roles: tuple[str, ...], password: str
) -> None:
    with pytest.raises(InvalidArgument):
        await create(world, email, name=name, roles=roles, password=password)
    assert world.hasher.hashed == [] and world.store.rows == {}


# --- GetUser ---------------------------------------------------------------------------------


async def test_get_for_self_and_admin(world: World) -> None:
    ada = await create(world)
    assert await world.service.get(user(ada.id), ada.id) == ada
    assert await world.service.get(ADMIN, ada.id) == ada


async def test_get_someone_else_is_permission_denied(world: World) -> None:
    ada = await create(world)
    grace = await create(world, "grace@example.com")
    with pytest.raises(PermissionDenied):
        await world.service.get(user(grace.id), ada.id)
    with pytest.raises(PermissionDenied):
        await world.service.get(Principal("service-account", frozenset()), ada.id)


async def test_get_missing_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.service.get(ADMIN, 42)


# --- UpdateUser ------------------------------------------------------------------------------


async def update(
    world: World,
    caller: Principal,
    user_id: int,
    paths: list[str],
    *,
    email: str = "",
    name: str = "",
    roles: tuple[str, ...] = (),
    password: str = "",
) -> User:
    return await world.service.update(
        caller,
        user_id,
        paths=paths,
        email=email,
        name=name,
        roles=roles,
        password=password,
        request_id="req-2",
    )


async def test_update_changes_exactly_the_mask_paths(world: World) -> None:
    ada = await create(world)
    updated = await update(
        world, user(ada.id), ada.id, ["name"], name="Augusta", email="ignored@example.com"
    )
    assert (updated.name, updated.email, updated.roles) == ("Augusta", ada.email, ())
    assert updated.updated_at > ada.updated_at and updated.created_at == ada.created_at
    assert world.store.rows[ada.id].password_hash == "hashed:correct horse"
    assert events(world)[-1] == (UserEventType.UPDATED, ada.id, "req-2")


async def test_an_empty_mask_means_every_non_default_field(world: World) -> None:
    ada = await create(world)
    updated = await update(world, ADMIN, ada.id, [], name="Augusta", password="new password")
    assert (updated.name, updated.email) == ("Augusta", ada.email)
    assert world.store.rows[ada.id].password_hash == "hashed:new password"


async def test_nothing_to_change_returns_the_user_without_a_unit_of_work(world: World) -> None:
    ada = await create(world)
    units_before = len(world.units)
    assert await update(world, ADMIN, ada.id, []) == ada
    assert len(world.units) == units_before and len(world.store.events) == 1


async def test_changing_roles_needs_admin_even_for_oneself(world: World) -> None:
    ada = await create(world)
    with pytest.raises(PermissionDenied):
        await update(world, user(ada.id), ada.id, ["roles"], roles=("admin",))
    assert (await update(world, ADMIN, ada.id, ["roles"], roles=("admin",))).roles == ("admin",)


async def test_update_of_someone_else_is_refused(world: World) -> None:
    ada = await create(world)
    with pytest.raises(PermissionDenied):
        await update(world, user(ada.id + 1), ada.id, ["name"], name="Mallory")


async def test_update_with_an_unknown_path_is_invalid(world: World) -> None:
    ada = await create(world)
    with pytest.raises(InvalidArgument):
        await update(world, ADMIN, ada.id, ["created_at"])


async def test_update_of_a_missing_user_is_not_found_and_emits_nothing(world: World) -> None:
    with pytest.raises(NotFound):
        await update(world, ADMIN, 42, ["name"], name="Nobody")
    assert world.store.events == [] and not world.units[-1].committed


async def test_update_to_a_taken_email_is_already_exists_and_changes_nothing(
    world: World,
) -> None:
    ada = await create(world)
    await create(world, "grace@example.com")
    with pytest.raises(AlreadyExists):
        await update(world, ADMIN, ada.id, ["email", "name"], email="GRACE@example.com", name="X")
    assert world.store.rows[ada.id].user == ada
    assert [e[0] for e in events(world)] == [UserEventType.CREATED, UserEventType.CREATED]


# --- DeleteUser ------------------------------------------------------------------------------


async def test_delete_removes_and_emits_deleted(world: World) -> None:
    ada = await create(world)
    deleted = await world.service.delete(ADMIN, ada.id, request_id="req-3")
    assert deleted == ada and world.store.rows == {}
    assert events(world)[-1] == (UserEventType.DELETED, ada.id, "req-3")
    with pytest.raises(NotFound):
        await world.service.get(ADMIN, ada.id)


async def test_delete_needs_admin_even_for_oneself(world: World) -> None:
    ada = await create(world)
    with pytest.raises(PermissionDenied):
        await world.service.delete(user(ada.id), ada.id, request_id=None)
    assert ada.id in world.store.rows


async def test_delete_of_a_missing_user_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.service.delete(ADMIN, 42, request_id=None)
    assert world.store.events == [] and not world.units[-1].committed


# --- ListUsers -------------------------------------------------------------------------------


async def test_pages_walk_every_user_once_in_id_order(world: World) -> None:
    made = [await create(world, f"u{i}@example.com") for i in range(7)]
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = await world.service.list_page(ADMIN, page_size=3, page_token=token, filter_text="")
        seen += [u.id for u in page.users]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [u.id for u in made] and pages == 3


async def test_a_full_last_page_has_no_next_token(world: World) -> None:
    for i in range(2):
        await create(world, f"u{i}@example.com")
    page = await world.service.list_page(ADMIN, page_size=2, page_token="", filter_text="")
    assert len(page.users) == 2 and page.next_page_token == ""


async def test_filters_by_email_substring_and_role(world: World) -> None:
    await create(world, "ada@example.com", roles=("support",))
    grace = await create(world, "grace@navy.mil", roles=("support",))
    await create(world, "linus@navy.mil")
    page = await world.service.list_page(
        ADMIN, page_size=0, page_token="", filter_text="email:NAVY role:support"
    )
    assert [u.id for u in page.users] == [grace.id]


async def test_a_token_is_bound_to_its_filter(world: World) -> None:
    for i in range(3):
        await create(world, f"u{i}@example.com")
    page = await world.service.list_page(ADMIN, page_size=1, page_token="", filter_text="")
    with pytest.raises(InvalidArgument):
        await world.service.list_page(
            ADMIN, page_size=1, page_token=page.next_page_token, filter_text="role:admin"
        )
    with pytest.raises(InvalidArgument):
        await world.service.list_page(ADMIN, page_size=1, page_token="forged", filter_text="")


async def test_page_size_zero_is_the_default_and_out_of_range_is_invalid(world: World) -> None:
    for i in range(DEFAULT_PAGE_SIZE + 1):
        await create(world, f"u{i}@example.com")
    page = await world.service.list_page(ADMIN, page_size=0, page_token="", filter_text="")
    assert len(page.users) == DEFAULT_PAGE_SIZE and page.next_page_token
    with pytest.raises(InvalidArgument):
        await world.service.list_page(ADMIN, page_size=-1, page_token="", filter_text="")


async def test_listing_needs_admin(world: World) -> None:
    with pytest.raises(PermissionDenied):
        await world.service.list_page(user(1), page_size=0, page_token="", filter_text="")


# --- Authenticate ----------------------------------------------------------------------------


async def test_authenticate_with_the_right_password(world: World) -> None:
    ada = await create(world)
    assert await world.service.authenticate(" ADA@example.com ", "correct horse") == ada


async def test_a_wrong_password_and_an_unknown_email_fail_the_same_way(world: World) -> None:
    await create(world)
    with pytest.raises(Unauthenticated) as wrong:
        await world.service.authenticate("ada@example.com", "wrong horse")
    with pytest.raises(Unauthenticated) as unknown:
        await world.service.authenticate("nobody@example.com", "correct horse")
    assert str(wrong.value) == str(unknown.value)
    # The unknown email is still checked (against the dummy hash): same time as a real check.
    assert world.hasher.verified == ["hashed:correct horse", None]


async def test_an_email_with_control_characters_is_never_looked_up(world: World) -> None:
    await create(world, "ada@example.com")
    with pytest.raises(Unauthenticated):
        await world.service.authenticate("ada@example.com\x00", "correct horse")
    assert world.hasher.verified == [None]


# --- SubscribeToUpdates (who may watch whom) -------------------------------------------------


def test_may_watch() -> None:
    service = make_world().service
    service.may_watch(ADMIN, [])
    service.may_watch(user(7), [7])
    with pytest.raises(PermissionDenied):
        service.may_watch(user(7), [])
    with pytest.raises(PermissionDenied):
        service.may_watch(user(7), [7, 8])
