"""The committed generated code matches proto/, and the contracts follow buf-style rules."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = ROOT / "proto"
COMMITTED = ROOT / "libs" / "protos" / "src" / "shop_protos"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_protos"] = module
    spec.loader.exec_module(module)
    return module


def test_committed_generated_code_is_not_stale(tmp_path: Path) -> None:
    gen = _load_generator()
    files = gen.generate(tmp_path)
    assert files, "protoc generated nothing"
    for fresh in files:
        rel = fresh.relative_to(tmp_path / "shop_protos")
        committed = COMMITTED / rel
        assert committed.exists(), f"{rel} is not committed: run `make proto`"
        assert committed.read_text() == fresh.read_text(), f"{rel} is stale: run `make proto`"


PROTOS = sorted(PROTO_DIR.rglob("*.proto"))


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: str(p.relative_to(PROTO_DIR)))
def test_package_is_versioned_and_matches_directory(proto: Path) -> None:
    text = proto.read_text()
    package = re.search(r"^package\s+([\w.]+);", text, re.M)
    assert package, "a package declaration is required"
    parts = package.group(1).split(".")
    assert re.fullmatch(r"v\d+((alpha|beta)\d*)?", parts[-1]), "package must end in a version (v1)"
    rel_dir = proto.parent.relative_to(PROTO_DIR).parts
    assert tuple(parts[-len(rel_dir) :]) == rel_dir, "package suffix must match the directory"


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: str(p.relative_to(PROTO_DIR)))
def test_field_message_and_enum_names_follow_the_style_guide(proto: Path) -> None:
    text = re.sub(r"//.*", "", proto.read_text())
    for name in re.findall(r"^\s*message\s+(\w+)", text, re.M):
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", name), f"message {name} must be PascalCase"
    for field in re.findall(
        r"^\s*(?:repeated\s+|optional\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;", text, re.M
    ):
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field), f"field {field} must be lower_snake_case"
    for enum, body in re.findall(r"enum\s+(\w+)\s*\{([^}]*)\}", text):
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum).upper() + "_"
        values = re.findall(r"(\w+)\s*=\s*(\d+);", body)
        assert values[0] == (prefix + "UNSPECIFIED", "0"), (
            f"{enum}'s zero value must be UNSPECIFIED"
        )
        for value, _ in values:
            assert value.startswith(prefix), f"{value} must be prefixed with {prefix}"
    for rpc, req, resp in re.findall(
        r"rpc\s+(\w+)\s*\(\s*(?:stream\s+)?(\w+)\s*\)\s*returns\s*\(\s*(?:stream\s+)?(\w+)", text
    ):
        assert req == f"{rpc}Request", f"{rpc} must take {rpc}Request"
        assert resp == f"{rpc}Response", f"{rpc} must return {rpc}Response"
