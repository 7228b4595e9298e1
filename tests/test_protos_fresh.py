"""The committed generated stubs match what scripts/gen_protos.py makes from proto/ now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen_module()
PROTOS = GEN.proto_files()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("protos")
    GEN.generate(out)
    return out


def test_the_identity_proto_is_there() -> None:
    assert Path("identity/v1/identity.proto") in PROTOS


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_generated_stubs_are_fresh(proto: Path, fresh: Path) -> None:
    stem = proto.with_suffix("")
    package = proto.parent
    inits = [Path(*package.parts[:i], "__init__.py") for i in range(1, len(package.parts) + 1)]
    missing = [str(p) for p in [Path("__init__.py"), *inits] if not (GEN.OUT / p).exists()]
    stale = []
    for rel in [*(Path(f"{stem}{suffix}") for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")), proto]:
        committed = GEN.OUT / rel  # the .proto copy beside the stubs is package data of the wheel
        if not committed.exists() or committed.read_bytes() != (fresh / rel).read_bytes():
            stale.append(str(rel))
    assert not (missing or stale), (
        f"stale or missing generated files for {proto}: {missing + stale}; "
        "run `python scripts/gen_protos.py` and commit the result"
    )


def test_descriptor_set_is_fresh(fresh: Path) -> None:
    """The reflection's descriptor set (with source info) matches the protos."""
    rel = GEN.DESCRIPTOR_SET
    assert (GEN.OUT / rel).read_bytes() == (fresh / rel).read_bytes(), (
        f"{rel} is stale; run `python scripts/gen_protos.py` and commit the result")


def test_generated_grpc_module_imports_absolutely() -> None:
    from stubs.identity.v1 import identity_pb2, identity_pb2_grpc

    assert identity_pb2.DESCRIPTOR.package == "identity.v1"
    assert hasattr(identity_pb2_grpc, "IdentityServiceStub")
