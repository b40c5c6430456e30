"""Raw broker ceiling (publish with confirms + consume with ack) beside the outbox relay.

The relay figure is rows/s from committed outbox rows to confirmed publishes (marked sent), on a
throwaway database and exchange; both figures come from the same run, alternated (A B A B).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from decimal import Decimal

import asyncpg
from shop_common.messaging import (
    OUTBOX_DDL,
    OrderCreated,
    OrderItem,
    OutboxRelay,
    Publisher,
    connect,
    new_event,
    outbox_row,
)
from shop_common.messaging.ceiling import measure_ceiling
from shop_common.settings import ServiceSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def sample_event() -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        user_id=1,
        items=[OrderItem(sku="SKU-1", quantity=2, unit_price=Decimal("9.95"))],
        total=Decimal("19.90"),
        currency="EUR",
    )


async def relay_throughput(amqp_url: str, database: str, rows: int) -> float:
    """Commit rows outbox rows, then time the relay until every one is confirmed and marked."""
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    connection = await connect(amqp_url, attempts=3)
    exchange_name = f"bench.outbox.{uuid.uuid4().hex[:8]}"
    channel = await connection.channel()
    exchange = await channel.declare_exchange(exchange_name, "topic", auto_delete=True)
    queue = await channel.declare_queue(exchange_name, auto_delete=False)
    await queue.bind(exchange, "#")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE outbox"))
        for start in range(0, rows, 500):
            async with engine.begin() as conn:
                for n in range(start, min(start + 500, rows)):
                    event = new_event("order.created", sample_event())
                    await outbox_row(
                        event, exchange=exchange_name, aggregate_id=str(n % 50)
                    ).insert(conn)
        relay = OutboxRelay(engine, Publisher(connection), batch_size=500, poll_interval=0.05)
        started = time.perf_counter()
        while await relay.relay_once() > 0:
            pass
        elapsed = time.perf_counter() - started
        async with engine.connect() as conn:
            left = (
                await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
            ).scalar_one()
        if left:
            raise RuntimeError(f"{left} outbox rows left unsent")
        return rows / elapsed
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await connection.close()
        await engine.dispose()


async def main(quick: bool) -> None:
    amqp_url = ServiceSettings().amqp_url
    messages, rows, rounds = (1_000, 1_000, 1) if quick else (5_000, 4_000, 2)
    database = f"bench_messaging_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        setup = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}")
        for statement in OUTBOX_DDL:
            await setup.execute(statement)
        await setup.close()
        ceilings: list[float] = []
        publish_only: list[float] = []
        relays: list[float] = []
        for i in range(rounds):
            ceiling = await measure_ceiling(amqp_url, messages=messages, size_bytes=400)
            ceilings.append(ceiling.msgs_per_s)
            print(f"round {i + 1}: broker ceiling {ceiling.msgs_per_s:,.0f} msgs/s", flush=True)
            publish = await measure_ceiling(amqp_url, messages=messages, consume=False)
            publish_only.append(publish.msgs_per_s)
            print(
                f"round {i + 1}: publish+confirm only {publish.msgs_per_s:,.0f} msgs/s", flush=True
            )
            relays.append(await relay_throughput(amqp_url, database, rows))
            print(f"round {i + 1}: outbox relay {relays[-1]:,.0f} rows/s", flush=True)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    ceiling_rate = sorted(ceilings)[len(ceilings) // 2]
    relay_rate = sorted(relays)[len(relays) // 2]
    publish_rate = sorted(publish_only)[len(publish_only) // 2]
    result = {
        "bench": "messaging",
        "ceiling_msgs_per_s": round(ceiling_rate),
        "outbox_relay_rows_per_s": round(relay_rate),
        "publish_confirm_msgs_per_s": round(publish_rate),
        "message_bytes": 400,
        # The relay only publishes: compare it with publishing alone, not the round trip.
        "ratio_to_ceiling": round(relay_rate / publish_rate, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-second run")
    asyncio.run(main(parser.parse_args().quick))
