"""Headless Chromium (Debian's package, installed by scripts/test.sh) for checks of what a person sees."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

# The flags keep Chromium off the network (this machine has none) and out of any user profile.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium is missing: scripts/test.sh installs Debian's `chromium` package")
    return path


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(page: Path, budget_ms: int = 5000) -> str:
    """The DOM of `page` after its scripts ran (what the browser built, not the file's text)."""
    return _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", page.resolve().as_uri()]).stdout


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1200, 900)) -> Path:
    _run([f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.resolve().as_uri()])
    return png
