"""End-to-end order pipeline: orders created over HTTP until PAID is seen, beside the broker ceiling.

User, catalog, order and payment run as subprocesses on loopback (shop_devstack.pipeline: their
own databases and RabbitMQ vhost). N workers each place an order (POST /orders on the order
service, with a bearer token; the order service prices it from the catalog, cached) and wait
until its `order.paid` event shows on the `order.status-events` tap queue, then place the next
one. Every order takes the saga's reservation step: the catalog reserves its stock (one SQL
statement) before the payment service charges; the run stocks the catalog up first
(Pipeline.stock_up) so no order is rejected for want of stock. Shoppers buy different products:
each order takes the next of the seed catalog's regularly stocked skus (`--skus 1` puts every
order on one sku: the worst case, every reservation waiting on the same stock row). Orders are placed for a fixed
duration: the figures are PAID orders per second and the create→PAID latency (p50/p99). The raw broker ceiling (aio-pika publish with confirms +
consume with ack, messages the size of an order.created event) is measured in the same run,
before and after the pipeline (A B A), on the same vhost.

    uv run --all-packages python bench/bench_orders.py --duration 20 --in-flight 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from shop_common.messaging import OrderCreated, OrderItem, connect, new_event
from shop_common.messaging.ceiling import measure_ceiling
from shop_devstack.pipeline import ORDER, Pipeline, PipelineConfig
from shop_testing.isolation import VhostAdmin, unique_name

TAP_QUEUE = "order.status-events"
# Pools as large as the consumers' concurrency, no overflow: an overflow connection is opened and
# closed per burst (a TCP + SSL negotiation + startup each time), which showed in the profile.
SERVICE_ENV = {
    "DATABASE_POOL_SIZE": "20",
    "DATABASE_MAX_OVERFLOW": "0",
    "CONSUMER_CONCURRENCY": "16",
}
# The seed catalog's products that start with 100 units (migration 0002; stocked up here).
_SEED = importlib.import_module("catalog_service.migrations.versions.0002_seed_products")
STOCKED_SKUS = tuple(str(row["sku"]) for row in _SEED.seed_rows() if row["stock"] == 100)


def order_event_size() -> int:
    """Bytes of a typical order.created envelope (the ceiling uses messages of this size)."""
    event = OrderCreated(
        order_id=uuid.uuid4(),
        user_id=12345,
        items=[OrderItem(sku="BOOK-001", quantity=2, unit_price=Decimal("41.99"))],
        total=Decimal("83.98"),
        currency="EUR",
    )
    return len(new_event("order.created", event, correlation_id=str(event.order_id)).to_json())


@dataclass
class Tracker:
    """Order id → when it was placed; resolved when its order.paid arrives on the tap."""

    waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    early: dict[str, float] = field(default_factory=dict)
    other_states: dict[str, int] = field(default_factory=dict)

    async def on_tap(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        envelope = json.loads(message.body)
        order_id = str(envelope["payload"]["order_id"])
        if envelope["event_type"] != "order.paid":
            self.other_states[envelope["event_type"]] = (
                self.other_states.get(envelope["event_type"], 0) + 1
            )
        future = self.waiting.pop(order_id, None)
        if future is None:
            self.early[order_id] = now  # the event beat the HTTP response to us
        elif not future.done():
            future.set_result(now)

    def expect(self, order_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if order_id in self.early:
            future.set_result(self.early.pop(order_id))
        else:
            self.waiting[order_id] = future
        return future


@dataclass
class Run:
    """What the workers measured."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    created: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def worker(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    tracker: Tracker,
    run: Run,
    until: float,
    paid_within: float,
    skus: Iterator[str],
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < until:
        body = {"items": [{"sku": next(skus), "quantity": 2}], "currency": "EUR"}
        started = time.perf_counter()
        try:
            async with session.post(
                f"{base_url}/orders",
                json=body,
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            ) as response:
                payload = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            run.error(type(error).__name__)
            await asyncio.sleep(0.05)
            continue
        if status != 201:
            run.error(f"http_{status}")
            await asyncio.sleep(0.05)
            continue
        run.created += 1
        try:
            paid_at = await asyncio.wait_for(tracker.expect(str(payload["id"])), paid_within)
        except TimeoutError:
            run.error("not_paid_in_time")
            continue
        run.latencies_ms.append((paid_at - started) * 1000)


async def progress(run: Run, started: float, until: float) -> None:
    last_count, last_time = 0, started
    while time.perf_counter() < until:
        await asyncio.sleep(2.0)
        now = time.perf_counter()
        count = len(run.latencies_ms)
        recent = run.latencies_ms[last_count:]
        p50 = statistics.median(recent) if recent else 0.0
        print(
            f"  t={now - started:5.1f}s paid={count} "
            f"rate={(count - last_count) / (now - last_time):7.1f}/s p50={p50:6.1f}ms "
            f"errors={sum(run.errors.values())}",
            flush=True,
        )
        last_count, last_time = count, now


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def postgres_backends(pipeline: Pipeline, admin_url: str) -> dict[int, str]:
    """PID → database of the PostgreSQL backends serving the pipeline's databases."""
    names = [
        urlsplit(pipeline.database_url(base)).path.lstrip("/") for base in pipeline.config.databases
    ]
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY($1::text[])", names
        )
    finally:
        await conn.close()
    bases = dict(zip(names, pipeline.config.databases, strict=True))
    return {int(row["pid"]): bases[row["datname"]] for row in rows}


def broker_pids() -> list[int]:
    """PIDs of the RabbitMQ server (beam.smp) on this machine: the whole broker, whose only
    traffic while the bench runs is the bench's own (other vhosts idle)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "beam.smp":
                    pids.append(int(entry.name))
    return pids


def cpu_snapshot(pipeline: Pipeline, backends: dict[int, str]) -> dict[str, float]:
    """CPU seconds used so far by each pipeline process, its PostgreSQL backends (in all and
    per database: `postgres:<database>`), RabbitMQ and us."""
    snapshot = {"bench": time.process_time(), "postgres": 0.0, "rabbitmq": 0.0}
    snapshot.update({f"postgres:{base}": 0.0 for base in set(backends.values())})
    for pid in broker_pids():
        with contextlib.suppress(OSError):
            snapshot["rabbitmq"] += cpu_seconds(pid)
    for name, child in pipeline.supervisor.children.items():
        if child.pid is not None:
            snapshot[name] = cpu_seconds(child.pid)
    for pid, base in backends.items():
        with contextlib.suppress(OSError):  # a backend that ended meanwhile
            used = cpu_seconds(pid)
            snapshot["postgres"] += used
            snapshot[f"postgres:{base}"] += used
    return snapshot


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def pipeline_run(
    pipeline: Pipeline, amqp_url: str, args: argparse.Namespace
) -> tuple[Run, float, dict[str, float]]:
    users = await pipeline.create_users(args.users, "Bench Shopper")
    tokens = [pipeline.token(user) for user in users]
    tracker = Tracker()
    skus = itertools.cycle(STOCKED_SKUS[: args.skus])
    connection = await connect(amqp_url, attempts=3, name="bench-tap")
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    tap = await channel.declare_queue(TAP_QUEUE, passive=True)
    await tap.purge()
    tag = await tap.consume(tracker.on_tap, no_ack=True)
    connector = aiohttp.TCPConnector(limit=args.in_flight + 8)
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def drive(run: Run, until: float) -> None:
                await asyncio.gather(
                    *(
                        worker(
                            session,
                            pipeline.url(ORDER),
                            tokens[n % len(tokens)],
                            tracker,
                            run,
                            until,
                            args.paid_within,
                            skus,
                        )
                        for n in range(args.in_flight)
                    )
                )

            if args.warmup > 0:
                print(f"warm-up {args.warmup:.0f} s ...", flush=True)
                await drive(Run(), time.perf_counter() + args.warmup)
            print(
                f"measuring {args.duration:.0f} s with {args.in_flight} in flight ...", flush=True
            )
            run = Run()
            backends = await postgres_backends(pipeline, args.postgres_url)
            cpu_before = cpu_snapshot(pipeline, backends)
            started = time.perf_counter()
            reporter = asyncio.create_task(progress(run, started, started + args.duration))
            await drive(run, started + args.duration)
            elapsed = time.perf_counter() - started
            cpu_after = cpu_snapshot(pipeline, backends)
            await reporter
            paid = max(len(run.latencies_ms), 1)
            used = {
                name: round((cpu_after[name] - cpu_before[name]) * 1000 / paid, 2)
                for name in cpu_before
                if name in cpu_after
            }
            per_order = {name: ms for name, ms in used.items() if ":" not in name}
            by_database = {name: ms for name, ms in used.items() if ":" in name}
            print(
                f"  CPU ms per PAID order: {per_order}, total {sum(per_order.values()):.1f}",
                flush=True,
            )
            print(f"  PostgreSQL CPU ms per PAID order, by database: {by_database}", flush=True)
    finally:
        await tap.cancel(tag)
        await connection.close()
    if tracker.other_states:
        print(f"  other status events seen: {tracker.other_states}", flush=True)
    return run, elapsed, per_order


async def ceiling(amqp_url: str, size: int, messages: int) -> float:
    result = await measure_ceiling(amqp_url, messages=messages, size_bytes=size)
    print(
        f"broker ceiling: {result.msgs_per_s:,.0f} msgs/s ({size} B, {messages} msgs)", flush=True
    )
    return result.msgs_per_s


async def main(args: argparse.Namespace) -> dict[str, Any]:
    admin = VhostAdmin(args.amqp_url, "local")
    vhost = unique_name("bench_orders")
    amqp_url = admin.create(vhost)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bench_orders_"))
    env = {**SERVICE_ENV, **dict(pair.split("=", 1) for pair in args.env)}
    config = PipelineConfig(
        amqp_url=amqp_url,
        log_dir=log_dir,
        postgres_admin_url=args.postgres_url,
        redis_url=args.redis_url,
        log_level=args.log_level,
        env=env,
        payment_env={"PROVIDER_LATENCY_MS": str(args.provider_latency_ms)},
    )
    pipeline = Pipeline(config, report=lambda line: print(f"  {line}", flush=True))
    size = order_event_size()
    try:
        print(f"starting user, catalog, order, payment (logs in {log_dir}) ...", flush=True)
        started = time.perf_counter()
        await pipeline.start()
        await pipeline.stock_up()
        print(f"ready in {time.perf_counter() - started:.1f} s", flush=True)
        ceilings = [await ceiling(amqp_url, size, args.ceiling_messages)]
        run, elapsed, cpu_ms = await pipeline_run(pipeline, amqp_url, args)
        ceilings.append(await ceiling(amqp_url, size, args.ceiling_messages))
    finally:
        await pipeline.close()
        admin.delete(vhost)
    paid = len(run.latencies_ms)
    orders_per_s = paid / elapsed if elapsed > 0 else 0.0
    ceiling_msgs = statistics.fmean(ceilings)
    print(
        f"pipeline: {paid} orders PAID in {elapsed:.1f} s = {orders_per_s:.1f} orders/s; "
        f"created {run.created}; errors {run.errors or 'none'}",
        flush=True,
    )
    return {
        "bench": "orders",
        "orders_per_s": round(orders_per_s, 1),
        "p50_ms": round(percentile(run.latencies_ms, 0.50), 1),
        "p99_ms": round(percentile(run.latencies_ms, 0.99), 1),
        "ceiling_msgs_per_s": round(ceiling_msgs),
        "ratio_to_ceiling": round(orders_per_s / ceiling_msgs, 3) if ceiling_msgs else 0.0,
        "cpu_ms_per_order": cpu_ms,
        "cpu_ms_per_order_total": round(sum(cpu_ms.values()), 2),
        "in_flight": args.in_flight,
        "duration_s": round(elapsed, 1),
        "errors": sum(run.errors.values()),
        "target_orders_per_s": 200,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--in-flight", type=int, default=64, help="orders in flight")
    parser.add_argument("--users", type=int, default=8, help="distinct shoppers (tokens)")
    parser.add_argument(
        "--skus", type=int, default=len(STOCKED_SKUS), help="distinct products ordered, in turn"
    )
    parser.add_argument("--paid-within", type=float, default=30.0, help="per-order deadline")
    parser.add_argument("--ceiling-messages", type=int, default=5000)
    parser.add_argument("--provider-latency-ms", type=float, default=5.0)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for every service (repeatable)"
    )
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    return parser.parse_args()


if __name__ == "__main__":
    result = asyncio.run(main(parse_args()))
    print(json.dumps(result))
