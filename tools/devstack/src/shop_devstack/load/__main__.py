"""`make load`: create shopper accounts, run Locust headless for a fixed time, report.

Prints RPS, p50/p95/p99 and the error rate per request type and overall, and ends with one
JSON line (like the benchmarks). Starts the system first when it is not running (and stops it
again afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from shop_devstack.accounts import admin_token, new_user
from shop_devstack.client import ShopClient
from shop_devstack.compose_control import choose_compose, compose_system
from shop_devstack.compose_stack import DEFAULT_PROJECT, StackError
from shop_devstack.launcher import config_for_run_dir, say, start_detached, stop_running
from shop_devstack.running import find_running

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


async def make_accounts(gateway_url: str, run_dir: Path, count: int) -> list[dict[str, object]]:
    """Create `count` shoppers through the gateway (as the admin)."""
    client = ShopClient(gateway_url)
    try:
        admin = await admin_token(client, run_dir)
        accounts = [await new_user(client, admin, f"Load Shopper {i}") for i in range(count)]
    finally:
        await client.close()
    return [{"id": a.id, "email": a.email, "password": a.password} for a in accounts]


def read_stats(prefix: Path) -> list[dict[str, str]]:
    """Rows of Locust's <prefix>_stats.csv."""
    with Path(f"{prefix}_stats.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _ms(value: str) -> float:
    """A Locust percentile cell ('N/A' when nothing was measured) in ms."""
    try:
        return float(value)
    except ValueError:
        return float("nan")


def report(rows: list[dict[str, str]], users: int, seconds: int) -> dict[str, object]:
    """Print one line per request type and return the aggregated figures."""
    say(f"{'request':<28}{'count':>8}{'fail':>6}{'rps':>8}{'p50':>7}{'p95':>7}{'p99':>7}  (ms)")
    for row in rows:
        say(
            f"{row['Name'][:27]:<28}{row['Request Count']:>8}{row['Failure Count']:>6}"
            f"{float(row['Requests/s']):>8.1f}{row['50%']:>7}{row['95%']:>7}{row['99%']:>7}"
        )
    total = next(r for r in rows if r["Name"] == "Aggregated")
    count, failures = int(total["Request Count"]), int(total["Failure Count"])
    return {
        "bench": "load",
        "users": users,
        "duration_s": seconds,
        "requests": count,
        "rps": round(float(total["Requests/s"]), 1),
        "p50_ms": _ms(total["50%"]),
        "p95_ms": _ms(total["95%"]),
        "p99_ms": _ms(total["99%"]),
        "error_rate": round(failures / count, 4) if count else 1.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; non-zero when Locust could not run or nothing was measured."""
    parser = argparse.ArgumentParser(prog="make load", description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=2)  # logins hash: no storm
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--run-dir", type=Path, help="the run directory of the system to use")
    parser.add_argument(
        "--compose",
        action="store_true",
        help="load the compose stack (the default when it runs and `make up`'s system does not)",
    )
    parser.add_argument(
        "--project",
        default=os.environ.get("COMPOSE_PROJECT", DEFAULT_PROJECT),
        help="the compose project (default: shop, as `make compose-up`)",
    )
    args = parser.parse_args(argv)
    config = config_for_run_dir(args.run_dir)
    system = find_running(config)
    if choose_compose(args.compose, args.project, system is not None):
        try:
            system = compose_system(args.project)
        except StackError as exc:
            say(f"✗ load: no compose stack to use: {exc}")
            return 2
        say(f"• the compose stack (project {args.project})")
        config = config_for_run_dir(system.run_dir)
    started_here = system is None
    if system is None:
        say("• the system is not running: starting it")
        if start_detached(config, [], say) != 0:
            return 2
        system = find_running(config)
    assert system is not None
    out = config.run_dir / "load"
    out.mkdir(parents=True, exist_ok=True)
    try:
        say(f"• creating {args.users} shopper accounts through {system.gateway_url}")
        accounts = asyncio.run(make_accounts(system.gateway_url, config.run_dir, args.users))
        accounts_file = out / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
        say(
            f"• Locust: {args.users} users, spawn rate {args.spawn_rate}/s, {args.seconds} s, headless"
        )
        result = subprocess.run(  # noqa: S603 - our interpreter, our locustfile
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.spawn_rate),
                "-t",
                f"{args.seconds}s",
                "--host",
                system.gateway_url,
                "--csv",
                str(out / "locust"),
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--stop-timeout",
                "5",
            ],
            env={**os.environ, "LOAD_ACCOUNTS_FILE": str(accounts_file)},
            capture_output=True,
            text=True,
            check=False,
        )
        if not Path(f"{out / 'locust'}_stats.csv").exists():
            say(f"✗ locust did not run (exit {result.returncode}): {result.stderr.strip()[-400:]}")
            return 1
        figures = report(read_stats(out / "locust"), args.users, args.seconds)
    finally:
        if started_here:
            stop_running(config, say)
    say(json.dumps(figures))
    return 0 if int(str(figures["requests"])) > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
