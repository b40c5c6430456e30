"""Every public name of shop_common.cache is reached by runtime code, not only by tests.

Read from the source with `ast` (nothing is imported). The roots are the imports from
shop_common.cache[.module] in runtime code: services/*/src, gateway/src, tools/devstack/src and
libs/common/src outside the cache package. From there a name is reached when a reached
top-level definition of the cache package uses it (MultiLevelCache reaches SingleFlight, a
RedisCache reaches redis_breaker through its default breaker). A public name (module level, no
leading underscore; `__all__` of the package included) that nothing reaches fails the test:
move it to examples/caching/ until a running feature uses it (examples/caching/README.md).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from shop_devstack.layout import REPO_ROOT

PACKAGE = "shop_common.cache"
CACHE_DIR = REPO_ROOT / "libs/common/src/shop_common/cache"
RUNTIME_DIRS = ("services/*/src", "gateway/src", "tools/devstack/src", "libs/common/src")

Name = tuple[str, str]  # (module, name), module relative to the package ("redis", "multilevel")


def _module_of(dotted: str) -> str | None:
    """'shop_common.cache.redis' → 'redis', 'shop_common.cache' → '__init__', other → None."""
    if dotted == PACKAGE:
        return "__init__"
    if dotted.startswith(PACKAGE + "."):
        return dotted.removeprefix(PACKAGE + ".")
    return None


def _defined(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _identifiers(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class CachePackage:
    """The cache package's top-level definitions, imports and the names each definition uses."""

    def __init__(self, directory: Path) -> None:
        self.trees = {p.stem: ast.parse(p.read_text(), str(p)) for p in directory.glob("*.py")}
        self.imports: dict[str, dict[str, Name]] = {}
        self.uses: dict[Name, set[str]] = {}
        for module, tree in self.trees.items():
            imported: dict[str, Name] = {}
            for stmt in ast.walk(tree):
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    source = _module_of(stmt.module)
                    if source is not None:
                        for alias in stmt.names:
                            imported[alias.asname or alias.name] = (source, alias.name)
            self.imports[module] = imported
            for stmt in tree.body:
                for name in _defined(stmt):
                    if name != "__all__":
                        self.uses[(module, name)] = _identifiers(stmt)

    def resolve(self, module: str, name: str) -> Name | None:
        """The definition `name` means in `module` (following re-exports), or None."""
        seen: set[Name] = set()
        while (module, name) not in self.uses:
            if (module, name) in seen or name not in self.imports.get(module, {}):
                return None
            seen.add((module, name))
            module, name = self.imports[module][name]
        return module, name

    def public(self) -> set[Name]:
        """Module-level public definitions (no leading underscore)."""
        return {key for key in self.uses if not key[1].startswith("_")}

    def exported(self) -> list[str]:
        """The package's `__all__`."""
        for stmt in self.trees["__init__"].body:
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
            ):
                return list(ast.literal_eval(stmt.value))
        return []


def _runtime_files() -> Iterator[Path]:
    for pattern in RUNTIME_DIRS:
        for directory in REPO_ROOT.glob(pattern):
            for path in directory.rglob("*.py"):
                if CACHE_DIR not in path.parents:
                    yield path


def _roots(path: Path) -> Iterator[tuple[str, str]]:
    """(module, name) pairs of shop_common.cache a runtime file uses."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: dict[str, str] = {}  # local name → cache module, for `cache.X` attribute use
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = _module_of(node.module)
            for alias in node.names:
                if module is not None:
                    yield module, alias.name
                sub = _module_of(f"{node.module}.{alias.name}")
                if sub is not None:
                    aliases[alias.asname or alias.name] = sub
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module = _module_of(alias.name)
                if module is not None and alias.asname:
                    aliases[alias.asname] = module
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            yield aliases[node.value.id], node.attr


def closure(package: CachePackage, roots: dict[Name, str]) -> dict[Name, str]:
    """The roots and every definition they use, transitively → what first reached it."""
    reached = dict(roots)
    queue: deque[Name] = deque(roots)
    while queue:
        module, name = queue.popleft()
        for used in package.uses[(module, name)]:
            target = package.resolve(module, used)
            if target is not None and target not in reached:
                reached[target] = f"{PACKAGE}.{module}.{name}"
                queue.append(target)
    return reached


def reached_from_runtime(package: CachePackage) -> dict[Name, str]:
    """Every definition runtime code reaches → the runtime file (or definition) reaching it."""
    roots: dict[Name, str] = {}
    for path in sorted(_runtime_files()):
        for module, name in _roots(path):
            target = package.resolve(module, name)
            if target is not None:
                roots.setdefault(target, str(path.relative_to(REPO_ROOT)))
    return closure(package, roots)


def test_every_public_cache_name_is_reached_by_runtime_code() -> None:
    package = CachePackage(CACHE_DIR)
    reached = reached_from_runtime(package)
    unreached = sorted(f"{PACKAGE}.{m}.{n}" for m, n in package.public() - reached.keys())
    assert unreached == [], (
        "reached only from tests (or not at all): wire them into a running feature or move "
        f"them to examples/caching/: {unreached}"
    )


def test_every_exported_name_is_a_definition_of_the_package() -> None:
    package = CachePackage(CACHE_DIR)
    exported = package.exported()
    assert exported, "shop_common.cache has no __all__"
    assert [n for n in exported if package.resolve("__init__", n) is None] == []


def test_the_scan_follows_the_library_from_the_order_service() -> None:
    """The scan is not vacuous: the order and catalog services import MultiLevelCache
    directly, and SingleFlight is reached only through MultiLevelCache."""
    reached = reached_from_runtime(CachePackage(CACHE_DIR))
    found_in = reached[("multilevel", "MultiLevelCache")]
    assert found_in.startswith(("services/catalog/src/", "services/order/src/"))
    assert reached[("stampede", "SingleFlight")] == f"{PACKAGE}.multilevel.MultiLevelCache"


def test_a_name_used_only_by_an_unreached_definition_is_unreached(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text(
        "from shop_common.cache.a import Used, Dead\n__all__ = ('Used', 'Dead')\n"
    )
    (tmp_path / "a.py").write_text(
        "from shop_common.cache.b import helper\nclass Used: ...\nclass Dead:\n    x = helper\n"
    )
    (tmp_path / "b.py").write_text("def helper() -> None: ...\n")
    package = CachePackage(tmp_path)
    assert package.resolve("__init__", "Dead") == ("a", "Dead")
    reached = closure(package, {("a", "Used"): "runtime"})
    assert package.public() - reached.keys() == {("a", "Dead"), ("b", "helper")}
