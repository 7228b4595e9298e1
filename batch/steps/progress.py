"""The progress bar each relink step draws (off with `RelinkOptions.progress=False`)."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(desc: str, total: int | None, enabled: bool, unit: str = "it") -> tqdm:
    """A bar that leaves no line behind when done (steps run inside one overall bar)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False,
                dynamic_ncols=True)
