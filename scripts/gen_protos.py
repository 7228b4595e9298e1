"""Generates Python stubs (`_pb2.py`, `_pb2_grpc.py`, `.pyi`) for every .proto under proto/.

Everything generated lives in one package, `stubs/`, apart from the hand-written code: the proto
package path is mirrored under it (`proto/identity/v1/x.proto` → `stubs/identity/v1/x_pb2.py`) and
the absolute imports protoc writes between our own protos (`from identity.v1 import x_pb2`) are
rewritten into it (`from stubs.identity.v1 import x_pb2`), as protoletariat does. Beside the stubs
go a copy of each .proto (so the wheel ships them: other languages generate from
`stubs/identity/v1/*.proto` in site-packages) and one descriptor set with imports and source info,
`stubs/descriptor_set.binpb`: the server's reflection serves it, so `grpcurl describe` shows the
proto comments, and it is the protoset for `grpcurl -protoset` or `ghz --protoset`. The generated
files are committed; `tests/test_protos_fresh.py` fails when they are stale.

Usage: python scripts/gen_protos.py [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = "stubs"
OUT = ROOT / PACKAGE
DESCRIPTOR_SET = Path("descriptor_set.binpb")


def proto_files(proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Every .proto under `proto_dir`, relative to it, sorted."""
    return sorted(p.relative_to(proto_dir) for p in proto_dir.rglob("*.proto"))


def generate(out: Path = OUT, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Runs protoc over every .proto into `out`, adding empty `__init__.py` files on the way.

    Args:
        out: the directory of the generated package (imports point into `stubs` whatever its name).
        proto_dir: the include root holding the .proto files.

    Returns:
        The generated files, relative to `out`.

    Raises:
        RuntimeError: protoc failed.
    """
    files = proto_files(proto_dir)
    if not files:
        return []
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--descriptor_set_out={out / DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *(str(f) for f in files),
    ]
    (out / DESCRIPTOR_SET).parent.mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed for {', '.join(map(str, files))}")
    roots = sorted({f.parts[0] for f in files})
    own_import = re.compile(rf"^(from|import) ({'|'.join(map(re.escape, roots))})\.", re.MULTILINE)
    init = out / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated stubs (scripts/gen_protos.py); never edit by hand."""\n')
    generated: list[Path] = [Path("__init__.py")]
    for f in files:
        stem = f.with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            module = out / f"{stem}{suffix}"
            module.write_text(own_import.sub(rf"\1 {PACKAGE}.\2.", module.read_text()))
        package = f.parent
        for i in range(1, len(package.parts) + 1):
            init = out / Path(*package.parts[:i]) / "__init__.py"
            if not init.exists():
                init.write_text("")
            generated.append(init.relative_to(out))
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            generated.append(Path(f"{stem}{suffix}"))
        (out / f).write_bytes((proto_dir / f).read_bytes())
        generated.append(f)
    generated.append(DESCRIPTOR_SET)
    return sorted(set(generated))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the generated package (default: {PACKAGE}/)")
    ns = parser.parse_args(argv)
    for path in generate(ns.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
