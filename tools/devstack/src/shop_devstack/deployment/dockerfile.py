"""Read a Dockerfile well enough to check it: stages, COPY sources, ENV, the uv sync steps."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its arguments (continuations joined)."""

    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    """One FROM ... AS name section."""

    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """Every instruction of this kind in the stage."""
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (ARG before the first FROM is ignored)."""
    stages: list[Stage] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, args = whole.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, words[0]))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(args: str) -> list[str]:
    """The argv of an exec-form (JSON array) or shell-form instruction."""
    if args.startswith("["):
        value = json.loads(args)
        return [str(v) for v in value]
    return shlex.split(args)


def copy_sources(instruction: Instruction) -> tuple[list[str], str, str | None]:
    """(sources, destination, --from stage or None) of a COPY/ADD."""
    words = shlex.split(instruction.args)
    from_stage = None
    plain: list[str] = []
    for word in words:
        if word.startswith("--from="):
            from_stage = word.removeprefix("--from=")
        elif not word.startswith("--"):
            plain.append(word)
    return plain[:-1], plain[-1], from_stage


def env_keys(stage: Stage) -> dict[str, str]:
    """ENV keys=values set in a stage (the `ENV a=1 b=2` form)."""
    found: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            key, sep, value = word.partition("=")
            if sep:
                found[key] = value
    return found


def uv_sync_runs(stage: Stage) -> list[tuple[int, list[str]]]:
    """(instruction index, argv) of every `uv sync` in a stage."""
    runs = []
    for index, instruction in enumerate(stage.instructions):
        if instruction.keyword == "RUN" and re.search(r"\buv sync\b", instruction.args):
            command = instruction.args[instruction.args.index("uv sync") :]
            runs.append((index, shlex.split(command)))
    return runs


def dockerignore_patterns(path: Path) -> list[str]:
    """Patterns of a .dockerignore file (comments and blanks dropped)."""
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """True when a context path is excluded by .dockerignore (last matching pattern wins)."""
    result = False
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        candidates = [body, f"**/{body.removeprefix('**/')}"] if body.startswith("**/") else [body]
        for prefix in prefixes:
            if any(
                fnmatch.fnmatch(prefix, c)
                or fnmatch.fnmatch(prefix.split("/")[-1], c.removeprefix("**/"))
                if c.startswith("**/")
                else fnmatch.fnmatch(prefix, c)
                for c in candidates
            ):
                result = not negate
                break
    return result


def global_args(text: str) -> dict[str, str | None]:
    """The ARGs declared before the first FROM (the only ones a FROM line can use): name -> default."""
    found: dict[str, str | None] = {}
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, args = stripped.partition(" ")
        if keyword.upper() == "FROM":
            break
        if keyword.upper() == "ARG":
            name, sep, default = args.strip().partition("=")
            found[name] = default if sep else None
    return found


def syntax_directive(text: str) -> str | None:
    """The `# syntax=` parser directive, when the file starts with one."""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped.startswith("#"):
            return None
        directive = stripped[1:].strip()
        if directive.lower().replace(" ", "").startswith("syntax="):
            return directive.partition("=")[2].strip()
    return None
