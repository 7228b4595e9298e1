"""The README and docs/ point only at files in the repository (a clone has no ../shared/)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_links_the_domain_rules() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/domain.md)" in readme
    assert "../shared" not in readme and "DESIGN.md" not in readme


def test_relative_links_resolve() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append(f"{doc.name}: {target}")
    assert not broken


def test_domain_doc_covers_what_a_user_needs() -> None:
    text = (ROOT / "docs" / "domain.md").read_text()
    for heading in ("## Links, strongest first", "## The customer", "## Holding is not claiming",
                    "## Erasure and export"):
        assert heading in text
    for word in ("verified", "equivalent", "observed", "probable", "possible", "Stable ids",
                 "Guardrails", "suppression"):
        assert word in text
