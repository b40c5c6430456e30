"""The skeleton's import rules and module sizes hold for order_service (AST, no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

import order_service

PACKAGE = Path(order_service.__file__).parent
IO = ("sqlalchemy", "asyncpg", "aio_pika", "redis", "grpc", "fastapi", "starlette", "httpx")
FORBIDDEN = {
    "domain": (*IO, "aiohttp", "shop_common.db", "shop_common.web", "order_service.adapters"),
    "service_layer": ("sqlalchemy", "aio_pika", "fastapi", "starlette", "grpc"),
    "entrypoints": ("order_service.adapters",),
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_import_only_what_they_may() -> None:
    broken = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for layer, forbidden in FORBIDDEN.items()
        for path in (PACKAGE / layer).rglob("*.py")
        for name in imported(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert broken == []


def test_no_module_is_long_without_saying_why() -> None:
    long = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if len(path.read_text().splitlines()) > 250
    ]
    assert long == []
