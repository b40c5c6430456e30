"""docs/patterns.md, docs/service-anatomy.md and docs/kubernetes.md name real code: every path
they quote resolves to a file or folder of this repository, every `file.py::test_name` to a test in
that file, and every symbol quoted right after a Python file to a name defined in it.

Paths are quoted in backticks, whole (`libs/common/src/shop_common/cache/patterns.py`) or by
their tail (`user_service/grpc/servicer.py`, `test_outbox.py`) when the tail names one file only.
A symbol is a backticked identifier (`RefreshAhead`, `OutboxRelay.start`) that follows a quoted
Python file in the same table cell or sentence.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from shop_devstack.layout import REPO_ROOT

DOCS = ("docs/patterns.md", "docs/service-anatomy.md", "docs/kubernetes.md")
TICKED = re.compile(r"`([^`\n]+)`")
PATHLIKE = re.compile(
    r"^(?!/)[\w./-]+\.(py|yaml|yml|sh|proto|toml|json|md)(::[\w\[\]-]+)?$|^[\w.-]+/[\w./-]*/$"
)
SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@cache
def tracked() -> tuple[str, ...]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    return tuple(out.splitlines())


def resolve(path: str, near: list[str] | None = None) -> list[str]:
    """Tracked files (or folders) whose path is `path` or ends with `/path`. A tail that names
    several is read beside the files quoted before it on the same line (`near`): the match that
    shares the longest leading folders with one of them, when only one does."""
    path = path.removeprefix("./")
    if path.endswith("/"):
        return sorted({f[: f.index(path) + len(path)] for f in tracked() if f"/{path}" in f"/{f}"})
    matches = [f for f in tracked() if f == path or f.endswith(f"/{path}")]
    if len(matches) > 1 and near:

        def shared(candidate: str) -> int:
            return max(len(os.path.commonpath([candidate, anchor])) for anchor in near)

        best = max(shared(m) for m in matches)
        closest = [m for m in matches if shared(m) == best]
        if best and len(closest) == 1:
            return closest
    return matches


@cache
def defined_names(file: str) -> frozenset[str]:
    """What a Python file defines, as `name`, `Class.name` and `.name` (a method or attribute of
    one of its classes), plus its string constants (an exchange or queue name quoted by value)."""
    tree = ast.parse((REPO_ROOT / file).read_text())
    names: set[str] = set()

    def targets(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Assign):
            return [t.id for t in node.targets if isinstance(t, ast.Name)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            return [node.target.id]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return [node.name]
        return []

    for node in tree.body:
        names.update(targets(node))
        if isinstance(node, ast.ClassDef):
            for inner in node.body:
                for name in targets(inner):
                    names.update((f"{node.name}.{name}", f".{name}"))
    names.update(
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )
    return frozenset(names)


def module_exists(dotted: str) -> bool:
    """`shop_common.web` or `shop_devstack.faults`: a package folder or module of the repo."""
    tail = dotted.replace(".", "/")
    return bool(resolve(f"{tail}.py") or resolve(f"{tail}/__init__.py"))


def references(doc: str) -> list[tuple[int, str, str | None, tuple[str, ...]]]:
    """(line, path, symbol or None, paths quoted before it on the line) for every quoted path
    and every symbol that follows a Python file."""
    found = []
    for number, line in enumerate((REPO_ROOT / doc).read_text().splitlines(), 1):
        before: list[str] = []
        for cell in line.split("|"):
            current: str | None = None
            for token in TICKED.findall(cell):
                token = token.strip()
                if PATHLIKE.match(token):
                    found.append((number, token, None, tuple(before)))
                    file = token.split("::")[0]
                    before.append(file)
                    current = file if file.endswith(".py") else None
                elif current and SYMBOL.match(token) and not token.isupper():
                    found.append((number, current, token, tuple(before[:-1])))
    return found


def problems(doc: str) -> list[str]:
    wrong = []
    for number, path, symbol, before in references(doc):
        file, _, test = path.partition("::")
        near = [m for b in before for m in resolve(b)]
        matches = resolve(file, near)
        if len(matches) != 1:
            what = "no such file" if not matches else f"ambiguous: {matches[:4]}"
            if symbol is None:
                wrong.append(f"{doc}:{number}: `{file}`: {what}")
            continue
        if not file.endswith(".py"):
            continue
        names = defined_names(matches[0])
        wanted = test.split("[")[0] if test else symbol
        if not wanted or wanted in names or f".{wanted}" in names:
            continue
        if "." in wanted and (wanted.split(".")[0] in names or module_exists(wanted)):
            continue
        wrong.append(f"{doc}:{number}: `{wanted}` is not defined in {matches[0]}")
    return sorted(set(wrong))


@pytest.mark.parametrize("doc", [d for d in DOCS if (REPO_ROOT / d).exists()])
def test_every_quoted_path_and_symbol_exists(doc: str) -> None:
    wrong = problems(doc)
    assert not wrong, f"{len(wrong)} stale reference(s):\n" + "\n".join(wrong)


def test_the_reader_finds_stale_references(tmp_path: Path) -> None:
    assert resolve("shop_common/messaging/outbox.py") == [
        "libs/common/src/shop_common/messaging/outbox.py"
    ]
    assert resolve("no/such/module.py") == []
    assert "OutboxRow.insert" in defined_names("libs/common/src/shop_common/messaging/outbox.py")
