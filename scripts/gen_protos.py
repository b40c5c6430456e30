"""Generate the shop_protos package from proto/ (the one codegen target: `make proto`).

The .proto files are staged under a `shop_protos/` root so that generated imports read
`from shop_protos.user.v1 import user_pb2` instead of a bare `user.v1`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = "shop_protos"
OUT_DIR = ROOT / "libs" / "protos" / "src"


def proto_files() -> list[Path]:
    """Every .proto file under proto/, relative to it."""
    return sorted(p.relative_to(PROTO_DIR) for p in PROTO_DIR.rglob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Run grpc_tools.protoc into out_root/shop_protos; return the generated files."""
    from grpc_tools import protoc  # imported lazily: a dev dependency

    include = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as staging_dir:
        staging = Path(staging_dir)
        for rel in proto_files():
            target = staging / PACKAGE / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROTO_DIR / rel, target)
        args = [
            "grpc_tools.protoc",
            f"-I{staging}",
            f"-I{include}",
            f"--python_out={out_root}",
            f"--mypy_out={out_root}",
            f"--grpc_python_out={out_root}",
            f"--mypy_grpc_out={out_root}",
            *[str(Path(PACKAGE) / rel) for rel in proto_files()],
        ]
        code = protoc.main(args)
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
    generated = sorted((out_root / PACKAGE).rglob("*_pb2*.py*"))
    for directory in {p.parent for p in generated}:
        for parent in [directory, *directory.parents]:
            if parent == out_root:
                break
            init = parent / "__init__.py"
            if not init.exists():
                init.write_text("")
    return generated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=OUT_DIR, help="output root (default: %(default)s)"
    )
    args = parser.parse_args()
    files = generate(args.out)
    for f in files:
        print(f"generated {f.relative_to(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
