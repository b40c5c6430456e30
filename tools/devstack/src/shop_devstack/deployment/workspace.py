"""The uv workspace as data: members, their distribution names and workspace dependencies."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Member:
    """One workspace member."""

    name: str
    path: str  # relative to the repository root
    workspace_deps: frozenset[str]


def members(root: Path) -> dict[str, Member]:
    """Every member of the root pyproject's [tool.uv.workspace], by canonical name."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    globs = config["tool"]["uv"]["workspace"]["members"]
    found: dict[str, Member] = {}
    for pattern in globs:
        for directory in sorted(root.glob(pattern)):
            pyproject = directory / "pyproject.toml"
            if not pyproject.exists():
                continue
            data = tomllib.loads(pyproject.read_text())
            name = canonicalize_name(data["project"]["name"])
            sources = data.get("tool", {}).get("uv", {}).get("sources", {})
            workspace = {canonicalize_name(k) for k, v in sources.items() if v.get("workspace")}
            deps = {
                canonicalize_name(Requirement(d).name)
                for d in data["project"].get("dependencies", [])
            }
            found[name] = Member(
                name, str(directory.relative_to(root)), frozenset(deps & workspace)
            )
    return found


def closure(name: str, all_members: dict[str, Member]) -> list[Member]:
    """A member and every workspace member it needs, transitively (sorted by path)."""
    seen: dict[str, Member] = {}
    stack: list[str] = [canonicalize_name(name)]
    while stack:
        current = stack.pop()
        if current in seen or current not in all_members:
            continue
        seen[current] = all_members[current]
        stack.extend(all_members[current].workspace_deps)
    return sorted(seen.values(), key=lambda m: m.path)
