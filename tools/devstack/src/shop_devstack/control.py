"""A running launcher's control socket: the demo and the end-to-end tests stop, start and kill
processes through it (fault injection), and read their state.

Protocol: one JSON object per line each way. Requests: {"cmd": "status"},
{"cmd": "stop" | "start" | "kill", "name": "<process>"}, {"cmd": "cut" | "restore",
"name": "redis" | "rabbitmq"} (with --fault-proxies). Replies: {"ok": true, "processes": {...}}
or {"ok": false, "error": "<one line>"}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

from shop_devstack.faults import TcpProxy
from shop_devstack.supervisor import StartupError, Supervisor


class ControlError(Exception):
    """The launcher refused a command or did not answer."""


async def _handle(
    supervisor: Supervisor, proxies: dict[str, TcpProxy], request: dict[str, Any]
) -> dict[str, Any]:
    cmd = request.get("cmd")
    name = request.get("name")
    if cmd in ("cut", "restore"):
        proxy = proxies.get(str(name))
        if proxy is None:
            return {"ok": False, "error": f"no fault proxy {name!r} (start with --fault-proxies)"}
        proxy.cut() if cmd == "cut" else proxy.restore()
        return {"ok": True, "processes": supervisor.snapshot()}
    if cmd != "status" and name not in supervisor.children:
        return {
            "ok": False,
            "error": f"unknown process {name!r}; known: {sorted(supervisor.children)}",
        }
    try:
        if cmd == "stop":
            await supervisor.stop(str(name))
        elif cmd == "start":
            await supervisor.start([str(name)])
            await supervisor.wait_ready([str(name)], within=60)
        elif cmd == "kill":
            supervisor.kill(str(name), signal.Signals[str(request.get("signal", "SIGKILL"))])
        elif cmd != "status":
            return {"ok": False, "error": f"unknown command {cmd!r}"}
    except (StartupError, KeyError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "processes": supervisor.snapshot()}


async def serve_control(
    supervisor: Supervisor, path: Path, proxies: dict[str, TcpProxy] | None = None
) -> asyncio.Server:
    """Listen on a Unix socket at path (replacing a stale one)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                except json.JSONDecodeError:
                    reply: dict[str, Any] = {"ok": False, "error": "request is not JSON"}
                else:
                    reply = await _handle(supervisor, proxies or {}, request)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_unix_server(on_client, path=str(path))


async def send_command(
    path: Path, cmd: str, name: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Send one command to a running launcher; ControlError when it refuses or is not running."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError as exc:
        raise ControlError(f"no launcher answers on {path}: {exc}") from exc
    try:
        writer.write(json.dumps({"cmd": cmd, "name": name, **extra}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=120)
    finally:
        writer.close()
    reply: dict[str, Any] = json.loads(line)
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error")))
    return reply
