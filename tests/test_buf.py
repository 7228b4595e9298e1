"""`buf lint` passes on proto/ with buf.yaml, and buf.yaml's lint and breaking rules do catch
what they are there for (an uncommented field, a renumbered field)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _buf(go_bin: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(go_bin / "buf"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "proto", work / "proto")
    shutil.copy(ROOT / "buf.yaml", work / "buf.yaml")
    return work


def test_buf_lint_passes(go_bin: Path) -> None:
    out = _buf(go_bin, ROOT, "lint")
    assert out.returncode == 0, out.stdout + out.stderr


def test_buf_lint_finds_an_uncommented_field(go_bin: Path, tmp_path: Path) -> None:
    work = _copy(tmp_path)
    proto = work / "proto" / "identity" / "v1" / "identity.proto"
    text = proto.read_text()
    last = "  string reference = 3;\n"
    assert last in text
    proto.write_text(text.replace(last, last + "  string undocumented_extra = 4;\n", 1))
    out = _buf(go_bin, work, "lint")
    assert out.returncode != 0
    assert "undocumented_extra" in out.stdout, out.stdout


def test_buf_breaking_catches_a_renumbered_field(go_bin: Path, tmp_path: Path) -> None:
    work = _copy(tmp_path)
    image = tmp_path / "before.binpb"
    assert _buf(go_bin, work, "build", "-o", str(image)).returncode == 0
    assert _buf(go_bin, work, "breaking", "--against", str(image)).returncode == 0
    proto = work / "proto" / "identity" / "v1" / "identity.proto"
    proto.write_text(proto.read_text().replace("string reference = 3;", "string reference = 4;", 1))
    out = _buf(go_bin, work, "breaking", "--against", str(image))
    assert out.returncode != 0 and "reference" in out.stdout, out.stdout
