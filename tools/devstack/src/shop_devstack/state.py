"""The state file a running launcher keeps in run/: how `down`, `status`, the demo and the
tests find it, and how a stale file (launcher gone) is told apart from a live one."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_launcher(pid: int) -> bool:
    """True when pid is a live shop_devstack launcher (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid)
    args = cmdline.split(b"\0")
    module = any(a == b"-m" and b == b"shop_devstack" for a, b in itertools.pairwise(args))
    script = any(arg.endswith(b".py") and b"shop_devstack" in arg for arg in args)
    return b"up" in args and (module or script)


def read_state(path: Path) -> dict[str, Any] | None:
    """The state of a live launcher, or None (no file, unreadable, or its launcher is gone)."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or not is_launcher(pid):
        return None
    return state


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process from /proc (0 when unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0
