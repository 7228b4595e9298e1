"""Shop-email and junk rule cases (tests/test_rules_paths.py) per path, on SQLite: customers per
person, wrong merges, and whether the shared value was marked generic. The first argument is the
source tree to test (put first on sys.path): this tree, or an export of an older commit.

    git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python bench/rules_before_after.py /tmp/before
"""

import sys
import tempfile
from collections import Counter
from pathlib import Path


def main(tree: str) -> None:
    sys.path.insert(0, tree)
    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))
    _accept_channels()
    import test_rules_paths as t

    from identity_graph.store import open_store

    for case in t.CASES[:6]:
        out = []
        for name, fn in t.PATHS.items():
            d = Path(tempfile.mkdtemp())
            with open_store(str(d / "g.db")) as store:
                note = ""
                try:
                    fn(store, case, d)
                except Exception as e:  # an older tree lacks what a path reads back at the end
                    note = f" (then {type(e).__name__})"
                recs = [r.record for r in case.rows]
                owners = [n.customer_id for n in store.get_identifiers(recs).values()]
                shared = sorted(case.generic)[0]
                node = store.get_identifier(shared)
                wrong = sum(n - 1 for n in Counter(owners).values() if n > 1)
                out.append(f"{name}: {len(set(owners))} customers for {len(recs)} people "
                           f"({wrong} wrong merges), {shared} generic={bool(node and node.generic)}"
                           + note)
        print(case.name, "|", "; ".join(out))


def _accept_channels() -> None:
    """An older tree's `GraphConfig` has no `channels` (any channel was accepted): let the
    cases' config name them anyway."""
    import dataclasses

    from identity_graph import config

    if "channels" in {f.name for f in dataclasses.fields(config.GraphConfig)}:
        return

    class GraphConfig(config.GraphConfig):
        channels: tuple[str, ...] = ()

        def __init__(self, *args, channels: tuple[str, ...] = (), **kwargs) -> None:
            super().__init__(*args, **kwargs)

    config.GraphConfig = GraphConfig


if __name__ == "__main__":
    main(sys.argv[1])
