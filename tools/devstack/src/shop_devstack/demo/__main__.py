"""`make demo`: start the system if it is not running, then walk through every pattern."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shop_devstack.client import ShopClient
from shop_devstack.compose_control import choose_compose, compose_system
from shop_devstack.compose_stack import DEFAULT_PROJECT, StackError
from shop_devstack.demo.context import DemoContext, exports_to
from shop_devstack.demo.narration import run_steps, summary
from shop_devstack.demo.steps import STEPS
from shop_devstack.launcher import config_for_run_dir, say, start_detached, stop_running
from shop_devstack.running import RunningSystem, find_running
from shop_devstack.traces import OtlpReceiver
from shop_devstack.traces.background import OTLP_HTTP_PORT, BackgroundReceiver, start_preferring

LOCAL_TRACES_URLS = {
    f"http://{host}:{OTLP_HTTP_PORT}/v1/traces" for host in ("127.0.0.1", "localhost")
}


async def walk(system: RunningSystem, only: list[str], receiver: OtlpReceiver | None = None) -> int:
    """Run the steps (all, or those whose title contains one of `only`) against system."""
    steps = [s for s in STEPS if not only or any(o.lower() in s.title.lower() for o in only)]
    client = ShopClient(system.gateway_url)
    traces = receiver if exports_to(system, receiver) else None
    try:
        outcomes = await run_steps(steps, DemoContext(client, system, traces=traces))
    finally:
        await client.close()
    return summary(outcomes, len(steps))


def main(argv: list[str] | None = None) -> int:
    """Entry point; the exit code is 0 only when every step behaved as described."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="leave a system the demo started running"
    )
    parser.add_argument(
        "--step", action="append", default=[], help="run only steps whose title contains this"
    )
    parser.add_argument("--run-dir", type=Path, help="the run directory of the system to use")
    parser.add_argument(
        "--compose",
        action="store_true",
        help="use the compose stack (the default when it runs and `make up`'s system does not)",
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
            compose = compose_system(args.project)
        except StackError as exc:
            say(f"✗ demo: no compose stack to use: {exc}")
            return 2
        say(f"• the compose stack (project {args.project}); gateway: {compose.gateway_url}")
        return asyncio.run(walk(compose, args.step))
    started_here = False
    receiver: BackgroundReceiver | None = None
    if system is None:
        say("• the system is not running: starting it (`make up` in the background)")
        receiver, up_args = _receiver_for_new_system()
        if start_detached(config, up_args, say) != 0:
            say("✗ demo: the system did not start (see run/logs/)")
            if receiver is not None:
                receiver.stop()
            return 2
        system = find_running(config)
        started_here = True
    else:
        receiver = _receiver_for(system)
    assert system is not None
    say(f"• gateway: {system.gateway_url}")
    try:
        code = asyncio.run(walk(system, args.step, receiver.receiver if receiver else None))
    finally:
        if started_here and not args.keep:
            say("• stopping the system the demo started (`make up` keeps one running)")
            stop_running(config, say)
        if receiver is not None:
            receiver.stop()
    return code


def _receiver_for_new_system() -> tuple[BackgroundReceiver | None, list[str]]:
    """The demo's OTLP receiver (on 4318 when free) and the `make up` arguments that send the
    services' traces to it, in small batches; none when the shell already says where they go."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_SDK_DISABLED"):
        return None, []
    receiver = start_preferring(OTLP_HTTP_PORT)
    say(
        f"• the services will send their traces to the demo's receiver at {receiver.receiver.endpoint}"
    )
    endpoint = f"OTEL_EXPORTER_OTLP_ENDPOINT={receiver.receiver.endpoint}"
    return receiver, ["--set", endpoint, "--set", "OTEL_BSP_SCHEDULE_DELAY=200"]


def _receiver_for(system: RunningSystem) -> BackgroundReceiver | None:
    """A receiver on 4318 when the running system sends its traces there and the port is free."""
    if system.state.get("traces_url") not in LOCAL_TRACES_URLS:
        return None
    receiver = BackgroundReceiver(OTLP_HTTP_PORT)
    try:
        receiver.start()
    except OSError:
        return None  # something else (a collector, Jaeger) already receives them there
    return receiver


if __name__ == "__main__":
    sys.exit(main())
