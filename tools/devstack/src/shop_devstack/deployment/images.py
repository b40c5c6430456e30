"""Each Dockerfile checked against the repository: COPY sources, workspace siblings, uv steps."""

from __future__ import annotations

from pathlib import Path

from shop_devstack.deployment import dockerfile
from shop_devstack.deployment.workspace import closure, members
from shop_devstack.layout import REPO_ROOT


def _ignore_patterns(path: Path, root: Path) -> list[str]:
    specific = path.with_name(path.name + ".dockerignore")
    return dockerfile.dockerignore_patterns(
        specific if specific.exists() else root / ".dockerignore"
    )


def _copied_before(stage: dockerfile.Stage, index: int) -> set[str]:
    sources: set[str] = set()
    for instruction in stage.instructions[:index]:
        if instruction.keyword in ("COPY", "ADD"):
            srcs, _, from_stage = dockerfile.copy_sources(instruction)
            if from_stage is None:
                sources.update(s.rstrip("/") for s in srcs)
    return sources


def dockerfile_problems(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """Every way this Dockerfile would fail to build or break a rule of the brief."""
    where = str(path.relative_to(root))
    if not path.exists():
        return [f"{where}: missing"]
    stages = dockerfile.parse(path.read_text())
    names = {s.name for s in stages}
    patterns = _ignore_patterns(path, root)
    problems: list[str] = []
    if len(stages) < 2:
        problems.append(f"{where}: not multi-stage")
    for stage in stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            sources, _, from_stage = dockerfile.copy_sources(instruction)
            if from_stage is not None:
                if from_stage not in names and ":" not in from_stage and "/" not in from_stage:
                    problems.append(
                        f"{where}:{instruction.line}: COPY --from={from_stage}: no such stage"
                    )
                continue
            for source in sources:
                if not (root / source).exists():
                    problems.append(
                        f"{where}:{instruction.line}: COPY source {source} does not exist"
                    )
                elif dockerfile.ignored(source, patterns):
                    problems.append(
                        f"{where}:{instruction.line}: COPY source {source} is excluded by .dockerignore"
                    )
    problems += _uv_problems(where, stages, root)
    final = stages[-1] if stages else None
    if final is not None:
        users = final.all("USER")
        if not users or users[-1].args.split(":")[0] in ("root", "0"):
            problems.append(f"{where}: the runtime stage must switch to a non-root USER")
        if not final.all("HEALTHCHECK"):
            problems.append(f"{where}: no HEALTHCHECK in the runtime stage")
        if "slim" not in final.base and "ARG" not in final.base and "${" not in final.base:
            problems.append(f"{where}: runtime base {final.base} is not a slim image")
        cmd = final.all("CMD")
        if not cmd or dockerfile.exec_form(cmd[-1].args)[:2] != ["python", "-m"]:
            problems.append(f"{where}: CMD must be the contract's `python -m <package>`")
    return problems


def registry_problems(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """What would make this Dockerfile need a registry even when local base images exist.

    Every FROM is an earlier stage or `${ARG}` with a default (the official image), so a
    registry-free machine passes local images as build args; no `# syntax=` line (BuildKit
    would pull that frontend); no `COPY --from=<image>` (use a stage FROM an ARG instead).
    """
    where = str(path.relative_to(root))
    text = path.read_text()
    problems: list[str] = []
    if (frontend := dockerfile.syntax_directive(text)) is not None:
        problems.append(f"{where}: `# syntax={frontend}` makes BuildKit pull its frontend")
    args = dockerfile.global_args(text)
    seen: set[str] = set()
    for stage in dockerfile.parse(text):
        base = stage.base
        if base in seen:
            pass
        elif base.startswith("${") and base.endswith("}"):
            name = base[2:-1]
            if name not in args:
                problems.append(f"{where}: FROM {base}: no global ARG {name}")
            elif not args[name]:
                problems.append(f"{where}: ARG {name} has no default (the official image)")
        else:
            problems.append(
                f"{where}: FROM {base} is fixed; take it from a build arg (ARG X={base})"
            )
        for instruction in stage.all("COPY") + stage.all("ADD"):
            _, _, from_stage = dockerfile.copy_sources(instruction)
            if from_stage is not None and from_stage not in seen:
                problems.append(
                    f"{where}:{instruction.line}: COPY --from={from_stage} is not a stage; "
                    "make it one (FROM ${ARG} AS name)"
                )
        seen.add(stage.name)
    return problems


def _uv_problems(where: str, stages: list[dockerfile.Stage], root: Path) -> list[str]:
    problems: list[str] = []
    runs = [
        (stage, index, argv) for stage in stages for index, argv in dockerfile.uv_sync_runs(stage)
    ]
    if len(runs) != 2:
        return [
            f"{where}: expected two `uv sync` steps (dependencies, then the workspace), found {len(runs)}"
        ]
    (stage, deps_at, deps_argv), (_, src_at, src_argv) = runs
    for argv, needed in (
        (deps_argv, ("--frozen", "--no-dev", "--no-install-workspace", "--package")),
        (src_argv, ("--frozen", "--no-dev", "--no-editable", "--package")),
    ):
        for flag in needed:
            if flag not in argv:
                problems.append(f"{where}: `{' '.join(argv)}` lacks {flag}")
    if "--package" not in deps_argv:
        return problems
    package = deps_argv[deps_argv.index("--package") + 1]
    workspace = members(root)
    needed_members = closure(package, workspace)
    if not needed_members:
        return [*problems, f"{where}: --package {package} is not a workspace member"]
    before_deps = _copied_before(stage, deps_at)
    before_src = _copied_before(stage, src_at) - before_deps
    for required in ("pyproject.toml", "uv.lock"):
        if required not in before_deps and "./" not in before_deps:
            problems.append(f"{where}: {required} is not copied before the dependency layer")
    for member in needed_members:
        if f"{member.path}/pyproject.toml" not in before_deps:
            problems.append(
                f"{where}: {member.path}/pyproject.toml (needed by {package}) not copied before the dependency layer"
            )
        if member.path not in before_src:
            problems.append(
                f"{where}: {member.path} (needed by {package}) not copied before the workspace sync"
            )
    return problems
