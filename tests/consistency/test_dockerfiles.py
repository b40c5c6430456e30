"""Every Dockerfile compose builds: COPY sources exist, siblings resolve, uv steps really work."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from shop_devstack.deployment import compose, dockerfile
from shop_devstack.deployment.images import dockerfile_problems, registry_problems
from shop_devstack.layout import REPO_ROOT

DOCKERFILES = sorted({s.dockerfile for s in compose.app_services(compose.load_compose())})


def _ids(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@pytest.mark.parametrize("path", DOCKERFILES, ids=_ids)
def test_dockerfile_builds_from_the_repository_root(path: Path) -> None:
    if not path.exists():
        member = path.parent / "pyproject.toml"
        assert not member.exists(), f"{_ids(member)} exists but {_ids(path)} does not"
        pytest.skip(f"{_ids(path.parent)} has not landed yet")
    assert dockerfile_problems(path) == []


@pytest.mark.parametrize("path", DOCKERFILES, ids=_ids)
def test_dockerfile_builds_without_a_registry_given_local_base_images(path: Path) -> None:
    """Every base image is a build arg defaulting to the official one; no `# syntax=` line."""
    assert path.exists(), f"{path} is missing"
    assert registry_problems(path) == []


def test_registry_check_catches_a_syntax_line_a_fixed_base_and_a_copy_from_an_image(
    tmp_path: Path,
) -> None:
    text = (
        "# syntax=docker/dockerfile:1.7\n"
        "ARG PYTHON_IMAGE\n"
        "FROM ${PYTHON_IMAGE} AS build\n"
        "COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /bin/uv\n"
        "FROM python:3.11-slim\n"
        "COPY --from=build /app /app\n"
    )
    path = REPO_ROOT / "tools" / "devstack" / f".Dockerfile.test-{os.getpid()}-{tmp_path.name}"
    path.write_text(text)
    try:
        problems = registry_problems(path)
    finally:
        path.unlink()
    assert any("syntax=docker/dockerfile:1.7" in p for p in problems)
    assert any("ARG PYTHON_IMAGE has no default" in p for p in problems)
    assert any("COPY --from=ghcr.io/astral-sh/uv:0.9 is not a stage" in p for p in problems)
    assert any("FROM python:3.11-slim is fixed" in p for p in problems)
    assert len(problems) == 4


GOOD = """
FROM python:3.11-slim AS build
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY libs/protos/pyproject.toml libs/protos/pyproject.toml
COPY libs/testing/pyproject.toml libs/testing/pyproject.toml
COPY tools/devstack/pyproject.toml tools/devstack/pyproject.toml
RUN uv sync --frozen --no-dev --no-install-workspace --package shop-devstack
COPY libs/common libs/common
COPY libs/protos libs/protos
COPY libs/testing libs/testing
COPY tools/devstack tools/devstack
RUN uv sync --frozen --no-dev --no-editable --package shop-devstack
FROM python:3.11-slim
COPY --from=build /app/.venv /app/.venv
USER app
HEALTHCHECK CMD ["true"]
CMD ["python", "-m", "shop_devstack"]
"""


def _problems_of(text: str, tmp_path: Path) -> list[str]:
    path = REPO_ROOT / "tools" / "devstack" / f".Dockerfile.test-{os.getpid()}-{tmp_path.name}"
    path.write_text(text)
    try:
        return dockerfile_problems(path)
    finally:
        path.unlink()


def test_checker_accepts_a_correct_dockerfile(tmp_path: Path) -> None:
    assert _problems_of(GOOD, tmp_path) == []


def test_checker_catches_a_missing_sibling_a_missing_source_and_root(tmp_path: Path) -> None:
    text = (
        GOOD.replace("COPY libs/protos libs/protos\n", "")
        .replace("COPY uv.lock", "COPY uv.lock")
        .replace("USER app", "USER root")
        .replace(
            "COPY tools/devstack tools/devstack",
            "COPY tools/devstack tools/devstack\nCOPY deploy/nope.sh /x",
        )
    )
    problems = _problems_of(text, tmp_path)
    assert any("libs/protos (needed by shop-devstack) not copied" in p for p in problems)
    assert any("COPY source deploy/nope.sh does not exist" in p for p in problems)
    assert any("non-root USER" in p for p in problems)


def test_checker_catches_dev_dependencies_and_an_editable_install(tmp_path: Path) -> None:
    text = GOOD.replace("--no-dev --no-install-workspace", "--no-install-workspace").replace(
        "--no-dev --no-editable", "--no-dev"
    )
    problems = _problems_of(text, tmp_path)
    assert any("lacks --no-dev" in p for p in problems)
    assert any("lacks --no-editable" in p for p in problems)


def test_dockerignore_keeps_tests_and_local_state_out_but_not_sources() -> None:
    patterns = dockerfile.dockerignore_patterns(REPO_ROOT / ".dockerignore")
    assert dockerfile.ignored("services/user/tests/unit/test_x.py", patterns)
    assert dockerfile.ignored(".venv/bin/python", patterns)
    assert dockerfile.ignored("run/devstack.json", patterns)
    assert not dockerfile.ignored("services/user/src/user_service/__init__.py", patterns)
    assert not dockerfile.ignored("uv.lock", patterns)


def _emulate_uv_steps(path: Path, workdir: Path) -> Path:
    """Run the Dockerfile's COPY + `uv sync` steps of its build stage, offline, in workdir."""
    stage = next(s for s in dockerfile.parse(path.read_text()) if dockerfile.uv_sync_runs(s))
    venv = workdir / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    for instruction in stage.instructions:
        if instruction.keyword == "COPY":
            sources, dest, from_stage = dockerfile.copy_sources(instruction)
            if from_stage is not None:
                continue
            for source in sources:
                src = REPO_ROOT / source
                target = workdir / (source if dest in ("./", ".") else dest)
                target.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(
                        src,
                        target,
                        ignore=shutil.ignore_patterns("tests", "__pycache__"),
                        dirs_exist_ok=True,
                    )
                else:
                    shutil.copy2(src, target)
        elif instruction.keyword == "RUN" and "uv sync" in instruction.args:
            argv = instruction.args[instruction.args.index("uv sync") :].split()
            subprocess.run(
                ["uv", *argv[1:]],
                cwd=workdir,
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
    return venv


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCKERFILES, ids=_ids)
def test_uv_steps_install_the_service_without_dev_dependencies(path: Path, tmp_path: Path) -> None:
    """The two uv layers, replayed offline from the lock: the service imports, pytest and the
    test harness (shop_testing, a dev dependency) are absent."""
    if not path.exists():
        pytest.skip(f"{_ids(path.parent)} has not landed yet")
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH (make install puts it in .tools/bin)")
    cmd = dockerfile.exec_form(dockerfile.parse(path.read_text())[-1].all("CMD")[-1].args)
    package = cmd[cmd.index("-m") + 1]
    if not list(path.parent.glob(f"src/{package}/__main__.py")):
        pytest.skip(f"{package}.__main__ has not landed yet")
    venv = _emulate_uv_steps(path, tmp_path)
    python = venv / "bin" / "python"
    probe = f"import importlib.util as u, sys; sys.exit(0 if u.find_spec('{package}.__main__') and not u.find_spec('pytest') and not u.find_spec('shop_testing') else 1)"
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
