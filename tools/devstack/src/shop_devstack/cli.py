"""Command line: `python -m shop_devstack up|down|status|ctl` (what `make up` / `make down` run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from shop_devstack.control import ControlError, send_command
from shop_devstack.launcher import run_foreground, say, start_detached, stop_running
from shop_devstack.layout import Ports, StackConfig
from shop_devstack.state import read_state


def _config(args: argparse.Namespace) -> StackConfig:
    config = StackConfig()
    base = Ports()
    offset = args.port_offset
    extra = dict(item.split("=", 1) for item in args.set)
    return replace(
        config,
        run_dir=Path(args.run_dir).resolve() if args.run_dir else config.run_dir,
        ports=base.offset(offset),
        postgres_admin_url=args.postgres_url
        or os.environ.get("POSTGRES_URL")
        or config.postgres_admin_url,
        redis_url=args.redis_url or os.environ.get("REDIS_URL") or config.redis_url,
        amqp_url=args.amqp_url or os.environ.get("AMQP_URL") or config.amqp_url,
        database_prefix=args.database_prefix,
        log_level=args.log_level,
        extra_env=extra,
        fault_proxies=args.fault_proxies,
        prometheus=args.prometheus,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shop_devstack", description=__doc__)
    parser.add_argument(
        "--run-dir", help="where the state file, keys and logs live (default: run/)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole system and supervise it until Ctrl-C")
    up.add_argument(
        "--detach", action="store_true", help="run in the background; return when ready"
    )
    up.add_argument("--partial", action="store_true", help="skip services that are not installed")
    up.add_argument("--port-offset", type=int, default=0, help="add N to every default port")
    up.add_argument("--database-prefix", default="", help="prefix of the databases (test runs)")
    up.add_argument(
        "--postgres-url", help="administrative PostgreSQL URL (default: POSTGRES_URL or local)"
    )
    up.add_argument("--redis-url", help="Redis URL (default: REDIS_URL or local)")
    up.add_argument("--amqp-url", help="RabbitMQ URL (default: AMQP_URL or local)")
    up.add_argument("--log-level", default="INFO")
    up.add_argument(
        "--fault-proxies",
        action="store_true",
        help="route Redis and RabbitMQ through cut-able proxies",
    )
    up.add_argument(
        "--no-prometheus",
        dest="prometheus",
        action="store_false",
        help="do not start Prometheus beside the processes (started when installed)",
    )
    up.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env for every service",
    )
    commands.add_parser("down", help="stop a running system")
    commands.add_parser("status", help="print the running system's state as JSON")
    commands.add_parser(
        "check", help="check docker-compose.yml and the Dockerfiles against the code"
    )
    keys = commands.add_parser(
        "import-keys", help="adopt the compose keygen's key (public/, private/)"
    )
    keys.add_argument("source")
    ctl = commands.add_parser("ctl", help="stop, start or kill one process of a running system")
    ctl.add_argument("cmd", choices=["stop", "start", "kill", "status", "cut", "restore"])
    ctl.add_argument("name", nargs="?")
    return parser


def _forwarded(argv: Sequence[str]) -> list[str]:
    """The `up` arguments minus --detach, for the background launcher."""
    args = list(argv)
    start = args.index("up") + 1
    return [a for a in args[start:] if a != "--detach"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    import sys

    raw = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(raw)
    if args.command == "up":
        config = _config(args)
        if args.detach:
            return start_detached(config, _forwarded(raw), say)
        return asyncio.run(run_foreground(config, partial=args.partial))
    config = (
        replace(StackConfig(), run_dir=Path(args.run_dir).resolve())
        if args.run_dir
        else StackConfig()
    )
    if args.command == "down":
        return stop_running(config)
    if args.command == "check":
        return _check()
    if args.command == "import-keys":
        from shop_devstack.devkeys import import_compose_keys

        imported = import_compose_keys(Path(args.source), config.run_dir)
        say(f"✓ key {imported.kid} written to {config.run_dir}")
        return 0
    if args.command == "status":
        state = read_state(config.state_file)
        say(json.dumps(state, indent=2) if state else "nothing running")
        return 0 if state else 1
    try:
        reply = asyncio.run(send_command(config.control_socket, args.cmd, args.name))
    except ControlError as exc:
        say(f"✗ {exc}")
        return 1
    say(json.dumps(reply["processes"], indent=2))
    return 0


def _check() -> int:
    from shop_devstack.deployment.report import run_checks

    failed = 0
    for name, problems in run_checks().items():
        say(f"{'✓' if not problems else '✗'} {name}")
        for problem in problems:
            say(f"    {problem}")
        failed += len(problems)
    return 1 if failed else 0
