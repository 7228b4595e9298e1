"""The wheel ships the .proto files (for clients in other languages) and the protoset."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_protos_and_descriptor_set(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
           "-w", str(tmp_path)]
    leftover = not (ROOT / "build").exists()  # setuptools builds in the tree; leave it as found
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        if leftover:
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("identity_graph-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    protos = {f"stubs/{p.relative_to(ROOT / 'proto')}" for p in (ROOT / "proto").rglob("*.proto")}
    assert protos and protos <= names
    assert "stubs/descriptor_set.binpb" in names
    with zipfile.ZipFile(wheel) as z:
        shipped = z.read("stubs/identity/v1/identity.proto")
    assert shipped == (ROOT / "proto/identity/v1/identity.proto").read_bytes()
