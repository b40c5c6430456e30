"""A real network partition, the fault the process launcher cannot make (issue 12, part 3).

While shoppers place orders through the gateway (and read users with `no-cache`), three parts of
the compose network are cut in turn and joined again:

1. order ⇹ RabbitMQ, and nothing else: DROP rules in the order container's own network
   namespace (`nsenter -t <pid> -n iptables`) for RabbitMQ's address. Every service shares the
   one `backend` network, so `docker network disconnect order` would also cut it off from
   PostgreSQL, the user service and the gateway: a different fault (order placement down) from
   the one asked for (the outbox holds the events while the broker is unreachable).
2. one user-service replica (user-1): `docker network disconnect` from `backend`; user-2 serves.
3. Redis: `docker network disconnect` from `backend` (rate limits fail open, caches bypassed).

A joined container gets its DNS aliases back (`docker network connect --alias`), as compose
gave them. Each cut lasts until its effect is seen (polled, with deadlines); each join until
recovery is seen. Then: no order lost (every placement got its order, with the same
Idempotency-Key on retries), every order terminal, no order charged twice, and the breaker and
retry figures (gateway /metrics, the order service's /metrics, the outbox's attempts) printed
and checked against what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from shop_devstack.accounts import admin_token, login, new_user
from shop_devstack.client import TERMINAL_ORDER_STATES, Item, ShopClient
from shop_devstack.compose_stack import Running, Stack, StackError
from shop_testing.wait import eventually

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]
ITEM = Item("BOOK-001", 1)
SHOPPERS = 4
PACE = 0.25  # seconds between one shopper's requests: ~16 orders/s in all, under each user's limit
PLACE_PATIENCE = 120.0  # a placement is retried (same key) this long before it counts as lost
RETRIED = {429, 502, 503, 504}


def _docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Compose:
    """The running stack, as the test pokes at it."""

    stack: Stack

    def container(self, service: str) -> str:
        return self.stack.output("ps", "-q", service).strip()

    @property
    def backend(self) -> str:
        return f"{self.stack.project}_backend"

    def sql(self, database: str, query: str) -> list[list[str]]:
        out = self.stack.output(
            "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", database, "-At", "-F",
            "\t", "-c", query,
        )  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def metrics(self, service: str, port: int) -> str:
        code = (
            "import urllib.request;print(urllib.request.urlopen("
            f"'http://127.0.0.1:{port}/metrics', timeout=10).read().decode())"
        )
        return self.stack.output("exec", "-T", service, "python", "-c", code)

    def aliases(self, container: str) -> list[str]:
        networks = json.loads(
            _docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container)
        )
        return [a for a in networks[self.backend].get("Aliases") or [] if a != container[:12]]

    @contextlib.contextmanager
    def disconnected(self, service: str) -> Iterator[None]:
        """`docker network disconnect` service from backend; joined again with its aliases."""
        container = self.container(service)
        aliases = self.aliases(container)
        _docker("network", "disconnect", self.backend, container)
        try:
            yield
        finally:
            argv = [a for alias in aliases for a in ("--alias", alias)]
            _docker("network", "connect", *argv, self.backend, container)

    @contextlib.contextmanager
    def peer_cut(self, service: str, peer: str) -> Iterator[None]:
        """DROP every packet between service and peer, in service's network namespace only."""
        pid = _docker("inspect", "-f", "{{.State.Pid}}", self.container(service)).strip()
        peer_ip = json.loads(
            _docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", self.container(peer))
        )[self.backend]["IPAddress"]
        rules = [["INPUT", "-s", peer_ip, "-j", "DROP"], ["OUTPUT", "-d", peer_ip, "-j", "DROP"]]
        nsenter = ["nsenter", "-t", pid, "-n", "iptables", "-w"]
        for rule in rules:
            subprocess.run([*nsenter, "-I", *rule], check=True, timeout=30)
        try:
            yield
        finally:
            for rule in rules:
                subprocess.run([*nsenter, "-D", *rule], check=True, timeout=30)


def metric_sum(text: str, family: str, /, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for match in re.finditer(rf"^{family}(?:\{{([^}}]*)\}})? (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def breaker_state(text: str, name: str) -> str:
    match = re.search(
        rf'^circuit_breaker_state\{{name="{re.escape(name)}",state="(\w+)"\}} 1\.0$', text, re.M
    )
    return match.group(1) if match else "absent"


@dataclass
class Traffic:
    """What the shoppers did: every placement, and every answer that was not a success."""

    placements: list[str | None] = field(default_factory=list)  # order id, or None (gave up)
    accepted_at: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    reads_ok_at: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def accepted_since(self, moment: float) -> int:
        return sum(1 for t in self.accepted_at if t >= moment)

    def reads_since(self, moment: float) -> int:
        return sum(1 for t in self.reads_ok_at if t >= moment)


async def place(client: ShopClient, token: str, traffic: Traffic) -> None:
    """A well-behaved client: retried answers and lost connections are tried again, with the
    same Idempotency-Key (a retry can never make a second order), until PLACE_PATIENCE."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + PLACE_PATIENCE
    while time.monotonic() < deadline:
        try:
            response = await client.place_order(token, [ITEM], idempotency_key=key)
        except httpx.TransportError as exc:
            traffic.answers[f"order {type(exc).__name__}"] += 1
            await asyncio.sleep(0.5)
            continue
        if response.status_code == 201:
            traffic.placements.append(str(response.json()["id"]))
            traffic.accepted_at.append(time.monotonic())
            return
        traffic.answers[f"order {response.status_code}"] += 1
        if response.status_code not in RETRIED:
            traffic.unexpected.append(
                f"POST /api/orders {response.status_code}: {response.text[:200]}"
            )
            break
        await asyncio.sleep(min(float(response.headers.get("retry-after") or 0.5), 2.0))
    traffic.placements.append(None)


async def read(client: ShopClient, token: str, user_id: int, traffic: Traffic) -> None:
    try:
        response = await client.get_user(token, user_id, **{"Cache-Control": "no-cache"})
    except httpx.TransportError as exc:
        traffic.answers[f"user {type(exc).__name__}"] += 1
        return
    if response.status_code == 200:
        traffic.reads_ok_at.append(time.monotonic())
    else:
        traffic.answers[f"user {response.status_code}"] += 1
        if response.status_code >= 500 and response.status_code not in RETRIED:
            traffic.unexpected.append(
                f"GET /api/users {response.status_code}: {response.text[:200]}"
            )


@contextlib.asynccontextmanager
async def shopping(
    client: ShopClient, shoppers: list[tuple[int, str]], traffic: Traffic
) -> AsyncIterator[None]:
    stop = asyncio.Event()

    async def shopper(user_id: int, token: str) -> None:
        while not stop.is_set():
            await place(client, token, traffic)
            await read(client, token, user_id, traffic)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PACE)

    tasks = [asyncio.create_task(shopper(u, t)) for u, t in shoppers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_partitions_during_traffic_lose_nothing_and_show_in_the_metrics(
    compose_system: Running, compose_figures: dict[str, Any]
) -> None:
    if shutil.which("nsenter") is None or shutil.which("iptables") is None or os.geteuid() != 0:
        pytest.fail("the order ⇹ RabbitMQ cut needs root, nsenter and iptables on the Docker host")
    c = Compose(compose_system.stack)
    client = ShopClient(compose_system.gateway_url, timeout=30)
    run = asyncio.to_thread
    figures: dict[str, object] = {}
    try:
        admin = await admin_token(client, compose_system.run_dir)
        # Stock for all the traffic: the scenario is the partition, not the shelf running empty.
        await client.restock(admin, ITEM.sku, 2_000)
        shoppers = []
        for i in range(SHOPPERS):
            account = await new_user(client, admin, f"Partition Shopper {i}")
            shoppers.append((account.id, await login(client, account.email, account.password)))
        gateway0 = (await client.http.get("/metrics")).text
        traffic = Traffic()
        async with shopping(client, shoppers, traffic):
            await eventually(
                lambda: len(traffic.accepted_at) >= 10,
                timeout=60,
                interval=0.2,
                what="10 orders before any cut",
            )

            # 1. order ⇹ RabbitMQ: orders are still accepted; their events wait in the outbox.
            [[outbox_before]] = await run(
                c.sql, "orders", "SELECT coalesce(max(id), 0) FROM outbox"
            )
            after_cut = f"FROM outbox WHERE id > {outbox_before}"
            cut = time.monotonic()
            with c.peer_cut("order", "rabbitmq"):

                async def publish_failed() -> bool:
                    # The relay's confirm timed out and it recorded why: the row stays unsent
                    # and is published again by a later pass (the retry).
                    [[n]] = await run(
                        c.sql, "orders", f"SELECT count(*) {after_cut} AND last_error IS NOT NULL"
                    )
                    return traffic.accepted_since(cut) >= 5 and int(n) >= 1

                await eventually(
                    publish_failed,
                    timeout=90,
                    interval=1,
                    what="a failed publish recorded in the outbox",
                )
                [[held_n, failed_n]] = await run(
                    c.sql, "orders",
                    "SELECT count(*) FILTER (WHERE sent_at IS NULL), "
                    f"count(*) FILTER (WHERE last_error IS NOT NULL) {after_cut}",
                )  # fmt: skip
            rabbit_cut = {
                "seconds": round(time.monotonic() - cut, 1),
                "orders accepted during": traffic.accepted_since(cut),
                "events held in the outbox": int(held_n),
                "rows with a failed publish": int(failed_n),
            }
            figures["rabbitmq cut (order only)"] = rabbit_cut

            async def outbox_drained() -> bool:
                [[n]] = await run(
                    c.sql, "orders", "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
                )
                return int(n) == 0

            await eventually(
                outbox_drained, timeout=180, interval=1, what="the outbox drained after the cut"
            )
            [[republished]] = await run(
                c.sql, "orders", f"SELECT count(*) {after_cut} AND attempts > 1"
            )
            rabbit_cut["rows published on a retry"] = int(republished)

            # 2. one user-service replica off the network: user-2 serves every call.
            cut = time.monotonic()
            with c.disconnected("user-1"):
                await eventually(
                    lambda: traffic.reads_since(cut) >= 20 and traffic.accepted_since(cut) >= 10,
                    timeout=120, interval=0.2, what="20 user reads and 10 orders with user-1 cut off",
                )  # fmt: skip
            figures["user-1 cut"] = {
                "seconds": round(time.monotonic() - cut, 1),
                "user reads ok during": traffic.reads_since(cut),
                "orders accepted during": traffic.accepted_since(cut),
            }

            async def user1_reachable() -> bool:
                code = (
                    "import socket;socket.create_connection(('user-1', 50051), timeout=2).close()"
                )
                try:
                    await run(c.stack.output, "exec", "-T", "gateway", "python", "-c", code)
                except StackError:  # not yet
                    return False
                return True

            await eventually(
                user1_reachable, timeout=60, interval=1, what="user-1 reachable by name again"
            )

            # 3. Redis off the network: rate limits fail open, caches are bypassed.
            before = (await client.http.get("/metrics")).text
            cut = time.monotonic()
            with c.disconnected("redis"):

                async def failing_open() -> bool:
                    now = (await client.http.get("/metrics")).text
                    return (
                        metric_sum(now, "gateway_rate_limit_unchecked_total", route="orders")
                        > metric_sum(before, "gateway_rate_limit_unchecked_total", route="orders")
                        and traffic.accepted_since(cut) >= 5
                    )

                await eventually(
                    failing_open,
                    timeout=120,
                    interval=1,
                    what="orders let through uncounted without Redis",
                )
            figures["redis cut"] = {
                "seconds": round(time.monotonic() - cut, 1),
                "orders accepted during": traffic.accepted_since(cut),
            }
            user_id, token = shoppers[0]

            async def counted_again() -> bool:
                response = await client.get_user(token, user_id, **{"Cache-Control": "no-cache"})
                return response.status_code == 200 and "ratelimit" in response.headers

            await eventually(
                counted_again, timeout=60, interval=0.5, what="the rate limit counting again"
            )
        placed = [oid for oid in traffic.placements if oid]
        lost = len(traffic.placements) - len(placed)

        # Every order terminal, each PAID one charged once, nothing charged twice.
        ids = ",".join(f"'{oid}'" for oid in placed)

        async def all_terminal() -> bool:
            rows = await run(
                c.sql,
                "orders",
                f"SELECT status, count(*) FROM orders WHERE id IN ({ids}) GROUP BY status",
            )
            statuses = {s: int(n) for s, n in rows}
            figures["statuses"] = statuses
            return sum(statuses.values()) == len(placed) and set(statuses) <= TERMINAL_ORDER_STATES

        await eventually(all_terminal, timeout=240, interval=2, what="every order terminal")
        charges = await run(
            c.sql, "payments",
            "SELECT o.id::text, count(p.id) FROM unnest(ARRAY[" + ids + "]::uuid[]) AS o(id) "
            "LEFT JOIN payments p ON p.order_id = o.id AND p.kind = 'charge' AND p.status = 'succeeded' "
            "GROUP BY o.id",
        )  # fmt: skip
        per_order = {oid: int(n) for oid, n in charges}
        paid = {oid for (oid, status) in await run(c.sql, "orders", f"SELECT id::text, status FROM orders WHERE id IN ({ids})") if status == "PAID"}  # fmt: skip
        double = [oid for oid, n in per_order.items() if n > 1]
        unpaid_charged = [oid for oid, n in per_order.items() if n >= 1 and oid not in paid]
        paid_uncharged = [oid for oid in paid if per_order.get(oid) != 1]
        gateway1 = (await client.http.get("/metrics")).text
        order_metrics = await run(c.metrics, "order", 8001)

        def delta(family: str, /, **labels: str) -> float:
            return metric_sum(gateway1, family, **labels) - metric_sum(gateway0, family, **labels)

        figures.update(
            {
                "placements": len(traffic.placements),
                "orders accepted": len(placed),
                "lost": lost,
                "double charges": len(double),
                "charged but not PAID": len(unpaid_charged),
                "PAID without exactly one charge": len(paid_uncharged),
                "answers other than success seen by the shoppers": dict(traffic.answers),
                "gateway grpc:user breaker calls": {
                    o: delta("circuit_breaker_calls_total", name="grpc:user", outcome=o)
                    for o in ("success", "failure", "ignored")
                },
                "gateway rate limit unchecked (orders, fail open)": delta(
                    "gateway_rate_limit_unchecked_total", route="orders"
                ),
                "gateway breakers now": {
                    n: breaker_state(gateway1, n) for n in ("grpc:user", "order-service")
                },
                "order breakers now": {
                    n: breaker_state(order_metrics, n)
                    for n in ("user-service", "redis-cache:order-service:orders:users")
                },
                "order redis-cache breaker failures": metric_sum(
                    order_metrics, "circuit_breaker_calls_total",
                    name="redis-cache:order-service:orders:users", outcome="failure",
                ),
            }
        )  # fmt: skip
        print("partition figures:\n" + json.dumps(figures, indent=2, default=str))
        compose_figures["fault: network partitions"] = {
            k: figures[k]
            for k in ("placements", "orders accepted", "lost", "double charges", "statuses")
            if k in figures
        }
        assert not traffic.unexpected, traffic.unexpected
        assert lost == 0, f"{lost} placements never got an order: {figures}"
        assert not double, f"charged more than once: {double}"
        assert not unpaid_charged and not paid_uncharged, figures
        assert int(republished) > 0, "no outbox row was published again after the RabbitMQ cut"
        user_failures = sum(n for a, n in traffic.answers.items() if a.startswith("user 5"))
        breaker_failures = figures["gateway grpc:user breaker calls"]["failure"]  # type: ignore[index]
        assert breaker_failures >= user_failures, "the user breaker missed failed calls"
        assert figures["gateway rate limit unchecked (orders, fail open)"] > 0  # type: ignore[operator]
    finally:
        await client.close()
