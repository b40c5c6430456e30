"""`python -m user_service.entrypoints.demo` (make demo-user): a narrated session against a real server.

Creates a fresh PostgreSQL database, starts the user service on an ephemeral port, talks to it
with the typed UserClient (create, get, update with a field mask, list as a stream, watch an
update arrive on a subscription), then stops the server and drops the database. Exits 0.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
from shop_common.auth import TokenIssuer, generate_signing_key
from shop_common.clients.user import UserClient
from shop_common.logging import configure_logging

from user_service.bootstrap import bootstrap
from user_service.settings import Settings

SERVER_URL = os.environ.get(
    "DEMO_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def say(step: str, detail: str = "") -> None:
    """One narrated line."""
    print(f"\n== {step}" + (f"\n   {detail}" if detail else ""), flush=True)


async def run_session(client: UserClient, admin: str) -> None:
    """The narrated client session."""
    say("Create two users (CreateUser; passwords stored only as argon2 hashes)")
    ada = await client.create_user(
        "ada@example.com", "Ada Lovelace", "analytical engine", token=admin
    )
    grace = await client.create_user(
        "grace@example.com", "Grace Hopper", "compiler pioneer", roles=["admin"], token=admin
    )
    print(
        f"   created #{ada.id} {ada.email} and #{grace.id} {grace.email} roles={list(grace.roles)}"
    )

    say("Get a user (GetUser)")
    got = await client.get_user(ada.id, token=admin)
    print(f"   #{got.id} {got.name} <{got.email}> created {got.created_at:%H:%M:%S}")

    say("Watch Ada (SubscribeToUpdates), then update only her name (FieldMask paths=['name'])")
    events = client.subscribe([ada.id], token=admin)
    first_event = asyncio.ensure_future(anext(events))
    async with asyncio.timeout(10):
        # The subscription attaches asynchronously: repeat the (idempotent) update until seen.
        while not first_event.done():
            updated = await client.update_user(
                ada.id,
                {"name": "Augusta Ada King", "email": "ignored@example.com"},
                ["name"],
                token=admin,
            )
            await asyncio.wait([first_event], timeout=0.2)
    print(f"   name now {updated.name!r}; email untouched: {updated.email}")
    event = first_event.result()
    print(
        f"   subscription delivered: {event.event_type} for #{event.user_id} -> {event.user.name if event.user else None!r}"
    )
    await events.aclose()

    say("List users as a stream, two per page (keyset pagination, signed page token)")
    for index in range(3):
        await client.create_user(
            f"user{index}@example.com", f"User {index}", "long password", token=admin
        )
    page = await client.list_page(token=admin, page_size=2)
    print(
        f"   first page: {[u.email for u in page.users]}; next token {page.next_page_token[:16]}..."
    )
    async for user in client.list_users(token=admin, page_size=2, filter="email:@example.com"):
        print(f"   streamed #{user.id} {user.email}")

    say("Authenticate (email + password -> the user; no token needed)")
    who = await client.authenticate("grace@example.com", "compiler pioneer")
    print(f"   authenticated #{who.id} {who.email}")


async def main() -> int:
    """Fresh database, server, session, clean-up."""
    configure_logging("user-service", "WARNING", json=True)
    name = f"users_demo_{uuid.uuid4().hex[:8]}"
    admin_conn = await asyncpg.connect(SERVER_URL.replace("postgresql+asyncpg://", "postgresql://"))
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    database_url = SERVER_URL.rsplit("/", 1)[0] + f"/{name}"
    key = generate_signing_key("demo")
    settings = Settings(
        database_url=database_url,
        jwt_public_keys={key.kid: key.public_pem},
        outbox_relay_enabled=False,
        grace_period=2.0,
    )
    say("Start the user service", f"fresh database {name}; migrations applied on start")
    try:
        async with bootstrap(settings, address="127.0.0.1:0") as app:
            print(f"   listening on 127.0.0.1:{app.port} (grpc.health.v1, reflection, JWT auth)")
            client = UserClient([f"127.0.0.1:{app.port}"], default_timeout=5.0)
            try:
                admin = TokenIssuer(key, settings.jwt_issuer, settings.jwt_audience).issue(
                    "0", ["admin"]
                )
                await run_session(client, admin)
            finally:
                await client.close()
    finally:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()
    say("Done", "server stopped gracefully; demo database dropped")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
