"""GetUser through the real user service and PostgreSQL vs a trivial Echo RPC (the ceiling).

Both servers are grpc.aio servers in their own child process, on the same default asyncio
event loop; the client drives 100 calls in flight over ONE channel, alternating rounds
A (echo) B (GetUser) A B so drift hits both. Prints each round, then one JSON line:
{"bench": "user_get", ..., "ratio_to_ceiling": ...}.

What is fair: the ceiling is the framework alone (a bare grpc.aio server answering Echo, no
interceptor, no database), the thing the issue calls "a trivial echo RPC served by the same kind
of server". The user server runs exactly as deployed: the whole interceptor (request id, JWT
check, rate limit, access log as JSON lines to stdout, here sent to /dev/null), migrations,
health and the read pool, with the production settings except a rate limit high enough not to
refuse the benchmark and no outbox relay (GetUser writes nothing). Anything that would speed
both sides (uvloop: measured -12% server CPU per call on both) is left out of both.
GetUser calls cycle over 1,000 distinct users, so reads that the server coalesces into one
query (adapters/coalescing.py) fetch distinct rows, as real traffic would.
Set GET_USER_COALESCE_QUERIES=0 to measure the server without coalescing.

On this project's machines (2 cores shared by the client, both servers and PostgreSQL, and by
whatever else runs) the ratio moves with the load: rounds are summarised by their median, the
JSON gives the spread of the per-round ratios (ratio_min, ratio_max), and each server's CPU time
per call (from /proc), which moves far less with the load than RPS does; compare runs made back
to back.
Run: uv run python bench/bench_user.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import statistics
import time
import uuid
from typing import Any

import asyncpg
import grpc
from shop_common.auth import TokenIssuer, generate_signing_key
from shop_protos.echo.v1 import echo_pb2, echo_pb2_grpc
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_FLIGHT = 100
USERS = 1000


async def _seed_users(url: str, template_id: int, count: int) -> list[int]:
    """count users in all: the one created through the RPC plus copies made in SQL (hashing
    a thousand passwords with argon2 would take most of a minute)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(
            "INSERT INTO users (email, name, roles, password_hash, created_at, updated_at)"
            " SELECT 'bench' || g || '@example.com', 'Bench ' || g, '{}', u.password_hash,"
            " now(), now() FROM generate_series(1, $2::int) g, users u WHERE u.id = $1",
            template_id,
            count - 1,
        )
        return [row["id"] for row in await conn.fetch("SELECT id FROM users ORDER BY id")]
    finally:
        await conn.close()


class _Echo(echo_pb2_grpc.EchoServiceServicer):
    async def Echo(self, request: Any, context: Any) -> Any:
        return echo_pb2.EchoResponse(message=request.message)


def _echo_server(ports: Any, stop: Any) -> None:
    async def main() -> None:
        server = grpc.aio.server()
        echo_pb2_grpc.add_EchoServiceServicer_to_server(_Echo(), server)
        ports.put(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        await asyncio.to_thread(stop.wait)
        await server.stop(0)

    asyncio.run(main())


def _user_server(database_url: str, kid: str, public_pem: str, ports: Any, stop: Any) -> None:
    from shop_common.logging import configure_logging
    from user_service.server import create_server
    from user_service.settings import Settings

    async def main() -> None:
        settings = Settings(
            database_url=database_url,
            jwt_public_keys={kid: public_pem},
            rate_limit_per_second=1e9,
            rate_limit_burst=10**9,
            outbox_relay_enabled=False,  # GetUser writes nothing
        )
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        running, port = await create_server(settings, "127.0.0.1:0")
        ports.put(port)
        await asyncio.to_thread(stop.wait)
        await running.stop(grace=1)

    # The access log (one JSON line per call) is part of the real cost; send it nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    asyncio.run(main())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 where unavailable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _round(call: Any, seconds: float) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return len(latencies) / (time.perf_counter() - started), latencies, errors


def _pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q) - 1], 2) if len(values) > 1 else 0.0


async def bench(rounds: int, seconds: float) -> dict[str, Any]:
    db = f"bench_users_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{db}"')
    key = generate_signing_key("bench")
    ctx = mp.get_context("spawn")
    ports: Any = ctx.Queue()
    stop = ctx.Event()
    url = "postgresql+asyncpg://" + POSTGRES.split("://", 1)[1].rsplit("/", 1)[0] + f"/{db}"
    procs = [
        ctx.Process(target=_echo_server, args=(ports, stop)),
        ctx.Process(target=_user_server, args=(url, key.kid, key.public_pem, ports, stop)),
    ]
    procs[0].start()
    echo_port = ports.get(timeout=30)
    procs[1].start()
    user_port = ports.get(timeout=60)
    token = TokenIssuer(key, "shop-gateway", "shop", ttl_seconds=3600).issue("1", ["admin"])
    metadata = (("authorization", f"Bearer {token}"),)
    results: dict[str, list[tuple[float, list[float], int]]] = {"echo": [], "user_get": []}
    # Server CPU per call: steadier than RPS when other work shares the cores.
    cpu_us: dict[str, list[float]] = {"echo": [], "user_get": []}
    server_pid = {"echo": procs[0].pid or 0, "user_get": procs[1].pid or 0}
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}") as echo_ch,
            grpc.aio.insecure_channel(f"127.0.0.1:{user_port}") as user_ch,
        ):
            echo = echo_pb2_grpc.EchoServiceStub(echo_ch)
            users = user_pb2_grpc.UserServiceStub(user_ch)
            created = await users.CreateUser(
                user_pb2.CreateUserRequest(
                    email="bench@example.com", name="Bench", password="bench password"
                ),
                metadata=metadata,
                timeout=10,
            )
            ids = await _seed_users(url, created.user.id, USERS)
            echo_request = echo_pb2.EchoRequest(message="ping")
            # Calls cycle over distinct users, as real traffic does (so coalesced reads fetch
            # distinct rows, not one row many times).
            get_requests = itertools.cycle([user_pb2.GetUserRequest(id=i) for i in ids])

            def echo_call() -> Any:
                return echo.Echo(echo_request, timeout=5)

            def get_call() -> Any:
                return users.GetUser(next(get_requests), metadata=metadata, timeout=5)

            await _round(echo_call, min(seconds, 1.0))  # warm-up, not counted
            await _round(get_call, min(seconds, 1.0))
            for index in range(rounds):
                for name, call in (("echo", echo_call), ("user_get", get_call)):
                    cpu_before = _cpu_seconds(server_pid[name])
                    rps, lat, errors = await _round(call, seconds)
                    spent = _cpu_seconds(server_pid[name]) - cpu_before
                    results[name].append((rps, lat, errors))
                    cpu_us[name].append(spent / max(len(lat), 1) * 1e6)
                    print(
                        f"round {index + 1} {name:8s} rps={rps:8.0f} p50={_pct(lat, 50):6.2f}ms p99={_pct(lat, 99):6.2f}ms errors={errors} server_cpu={cpu_us[name][-1]:.0f}us/call",
                        flush=True,
                    )
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=10)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()

    def summary(name: str) -> tuple[float, list[float], int]:
        rounds_ = results[name]
        lat = [x for r in rounds_ for x in r[1]]
        return statistics.median(r[0] for r in rounds_), lat, sum(r[2] for r in rounds_)

    echo_rps, echo_lat, _ = summary("echo")
    user_rps, user_lat, user_errors = summary("user_get")
    # Each GetUser round against the echo round just before it: the spread shows the noise.
    pair_ratios = [u[0] / e[0] for e, u in zip(results["echo"], results["user_get"], strict=True)]
    echo_cpu, user_cpu = statistics.median(cpu_us["echo"]), statistics.median(cpu_us["user_get"])
    print(
        f"echo     median rps={echo_rps:.0f} p50={_pct(echo_lat, 50)}ms p99={_pct(echo_lat, 99)}ms"
    )
    print(
        f"user_get median rps={user_rps:.0f} p50={_pct(user_lat, 50)}ms p99={_pct(user_lat, 99)}ms errors={user_errors}"
    )
    print(
        f"per-round ratios {[round(r, 3) for r in pair_ratios]}; server CPU per call echo {echo_cpu:.0f} us, GetUser {user_cpu:.0f} us"
    )
    return {
        "bench": "user_get",
        "rps": round(user_rps),
        "p50_ms": _pct(user_lat, 50),
        "p99_ms": _pct(user_lat, 99),
        "errors": user_errors,
        "echo_rps": round(echo_rps),
        "echo_p50_ms": _pct(echo_lat, 50),
        "echo_p99_ms": _pct(echo_lat, 99),
        "in_flight": IN_FLIGHT,
        "ratio_to_ceiling": round(user_rps / echo_rps, 3),
        "ratio_min": round(min(pair_ratios), 3),
        "ratio_max": round(max(pair_ratios), 3),
        "server_cpu_us_per_call": round(user_cpu),
        "echo_server_cpu_us_per_call": round(echo_cpu),
        "cpu_ratio": round(echo_cpu / user_cpu, 3) if user_cpu else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-second run")
    args = parser.parse_args()
    rounds, seconds = (1, 1.5) if args.quick else (5, 4.0)
    print(json.dumps(asyncio.run(bench(rounds, seconds))))


if __name__ == "__main__":
    main()
