"""Every service has the one shape of docs/service-anatomy.md, and its layers keep their rules.

Read from the source with `ast` (nothing is imported):
- the skeleton: settings.py, bootstrap.py, __main__.py, domain/, adapters/, service_layer/,
  entrypoints/;
- domain/ imports no I/O library (nor the service's other layers);
- service_layer/ imports no SQLAlchemy, aio-pika, FastAPI, Starlette or gRPC, and no adapter
  (it works on the abstractions it declares; bootstrap hands it the real ones);
- entrypoints/ reach the adapters only through bootstrap (they never import adapters/);
- __main__.py only runs the service;
- bootstrap configures tracing first on its exit stack (its spans are flushed last);
- no runtime module of a service or of shop_common is over 250 lines unless its docstring says
  why ("is long because").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from shop_devstack.layout import REPO_ROOT

SERVICES = {
    "user_service": REPO_ROOT / "services/user/src/user_service",
    "order_service": REPO_ROOT / "services/order/src/order_service",
    "payment_service": REPO_ROOT / "services/payment/src/payment_service",
    "catalog_service": REPO_ROOT / "services/catalog/src/catalog_service",
    "web_service": REPO_ROOT / "services/web/src/web_service",
    "gateway": REPO_ROOT / "gateway/src/gateway",
}
SKELETON = (
    "settings.py",
    "bootstrap.py",
    "__main__.py",
    "domain",
    "adapters",
    "service_layer",
    "entrypoints",
)
IO_LIBRARIES = (
    "sqlalchemy",
    "asyncpg",
    "aio_pika",
    "aiormq",
    "redis",
    "grpc",
    "fastapi",
    "starlette",
    "httpx",
    "aiohttp",
    "uvicorn",
    "shop_common.db",
    "shop_common.web",
    "shop_common.cache",
    "shop_common.discovery",
    "shop_common.clients",
    "shop_common.messaging.connection",
    "shop_common.messaging.consumer",
    "shop_common.messaging.publisher",
    "shop_common.messaging.relay",
    "shop_common.messaging.outbox",
    "shop_common.messaging.inbox",
    "shop_common.messaging.dlq",
    "shop_common.messaging.monitor",
)
SERVICE_LAYER_FORBIDDEN = ("sqlalchemy", "aio_pika", "aiormq", "fastapi", "starlette", "grpc")
MAX_LINES = 250
LONG_REASON = "is long because"


def imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; relative imports resolved to the package)."""
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        {
            name
            for name in imports(path)
            if any(name == f or name.startswith(f"{f}.") for f in forbidden)
        }
    )


def layer_files(package: str, layer: str) -> list[Path]:
    return sorted((SERVICES[package] / layer).rglob("*.py"))


def violations(package: str, layer: str, forbidden: tuple[str, ...]) -> list[str]:
    wrong = []
    for path in layer_files(package, layer):
        bad = offending(path, forbidden)
        if bad:
            wrong.append(f"{path.relative_to(REPO_ROOT)} imports {', '.join(bad)}")
    return wrong


@pytest.mark.parametrize("package", SERVICES)
def test_every_service_has_the_skeleton(package: str) -> None:
    missing = [part for part in SKELETON if not (SERVICES[package] / part).exists()]
    assert not missing, f"{package} lacks {missing} (docs/service-anatomy.md)"


@pytest.mark.parametrize("package", SERVICES)
def test_the_domain_imports_no_io(package: str) -> None:
    own = tuple(f"{package}.{layer}" for layer in ("adapters", "service_layer", "entrypoints"))
    wrong = violations(package, "domain", (*IO_LIBRARIES, *own, f"{package}.bootstrap"))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", SERVICES)
def test_the_service_layer_imports_no_framework_and_no_adapter(package: str) -> None:
    own = (f"{package}.adapters", f"{package}.entrypoints", f"{package}.bootstrap")
    wrong = violations(package, "service_layer", (*SERVICE_LAYER_FORBIDDEN, *own))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", SERVICES)
def test_entrypoints_reach_adapters_only_through_bootstrap(package: str) -> None:
    wrong = violations(package, "entrypoints", (f"{package}.adapters",))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", SERVICES)
def test_main_only_runs_the_service(package: str) -> None:
    main = SERVICES[package] / "__main__.py"
    tree = ast.parse(main.read_text())
    defined = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert len(main.read_text().splitlines()) <= 40, f"{main} does more than run the service"
    assert len(defined) <= 1, f"{main} defines {[d.name for d in defined]}"
    own = {
        name.split(".")[1]
        for name in imports(main)
        if name.startswith(f"{package}.") and name.count(".") >= 1
    }
    assert own <= {"bootstrap", "settings", "entrypoints"}, f"{main} imports {own}"


def runtime_modules() -> list[Path]:
    roots = [*SERVICES.values(), REPO_ROOT / "libs/common/src/shop_common"]
    return sorted(
        p for root in roots for p in root.rglob("*.py") if "migrations/versions" not in str(p)
    )


def test_no_module_is_long_without_saying_why() -> None:
    long = []
    for path in runtime_modules():
        text = path.read_text()
        if len(text.splitlines()) > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if LONG_REASON not in docstring:
                long.append(f"{path.relative_to(REPO_ROOT)}: {len(text.splitlines())} lines")
    assert not long, f"over {MAX_LINES} lines, no '{LONG_REASON}' in the docstring:\n" + "\n".join(
        long
    )


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import sqlalchemy.ext\nfrom aio_pika import connect\nimport json\n")
    assert offending(sample, SERVICE_LAYER_FORBIDDEN) == [
        "aio_pika",
        "aio_pika.connect",
        "sqlalchemy.ext",
    ]


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")


def log_style_problems(path: Path) -> list[str]:
    """Loggers obtained other than through shop_common.logging.get_logger, and event names
    that are not snake_case (`order_created`), in one module."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func, owner = node.func.attr, node.func.value
        if func in ("get_logger", "getLogger") and isinstance(owner, ast.Name):
            if owner.id in ("structlog", "logging"):
                wrong.append(f"line {node.lineno}: {owner.id}.{func}: use shop_common.logging")
        elif func in LOG_METHODS and isinstance(owner, ast.Name) and "log" in owner.id.lower():
            first = node.args[0] if node.args else None
            named = isinstance(first, ast.Constant) and isinstance(first.value, str)
            if named and not EVENT_NAME.match(str(first.value)):  # type: ignore[union-attr]
                wrong.append(f"line {node.lineno}: event {first.value!r} is not snake_case")  # type: ignore[union-attr]
    return wrong


def test_one_logger_style_with_snake_case_event_names() -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)} {problem}"
        for path in runtime_modules()
        if path.name != "logging.py" or "shop_common" not in path.parts
        for problem in log_style_problems(path)
    ]
    assert not wrong, "\n".join(wrong)


def tracing_problem(path: Path) -> str | None:
    """None when the bootstrap's exit stack configures tracing first and closes it last: its
    first two statements are `tracing = configure_tracing(settings.service_name, settings)`
    and `stack.push_async_callback(tracing.aclose)`, so every span of the stop is flushed."""
    stacks = [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.AsyncWith)
        and any("AsyncExitStack" in ast.unparse(item.context_expr) for item in node.items)
    ]
    if not stacks:
        return "no AsyncExitStack"
    first = [ast.unparse(statement) for statement in stacks[0].body[:2]]
    expected = [
        "tracing = configure_tracing(settings.service_name, settings)",
        "stack.push_async_callback(tracing.aclose)",
    ]
    return None if first == expected else f"its exit stack starts with {first}"


@pytest.mark.parametrize("package", SERVICES)
def test_every_bootstrap_configures_tracing_first_and_flushes_it_last(package: str) -> None:
    problem = tracing_problem(SERVICES[package] / "bootstrap.py")
    assert problem is None, f"{package}/bootstrap.py: {problem}"


def test_the_tracing_check_sees_a_bootstrap_without_tracing(tmp_path: Path) -> None:
    sample = tmp_path / "bootstrap.py"
    sample.write_text(
        "async def bootstrap(settings):\n"
        "    async with AsyncExitStack() as stack:\n"
        "        engine = create_engine(settings)\n"
        "        yield engine\n"
    )
    assert (
        tracing_problem(sample)
        == "its exit stack starts with ['engine = create_engine(settings)', 'yield engine']"
    )
