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
    import test_rules_paths as t

    from identity_graph.store import open_store

    for case in t.CASES[:6]:
        out = []
        for name, fn in t.PATHS.items():
            d = Path(tempfile.mkdtemp())
            with open_store(str(d / "g.db")) as store:
                try:
                    fn(store, case, d)
                except Exception as e:  # an older tree may fail on a path: say so
                    out.append(f"{name}: ERROR {type(e).__name__}")
                    continue
                recs = [r.record for r in case.rows]
                owners = [n.customer_id for n in store.get_identifiers(recs).values()]
                shared = sorted(case.generic)[0]
                node = store.get_identifier(shared)
                wrong = sum(n - 1 for n in Counter(owners).values() if n > 1)
                out.append(f"{name}: {len(set(owners))} customers for {len(recs)} people "
                           f"({wrong} wrong merges), {shared} generic={bool(node and node.generic)}")
        print(case.name, "|", "; ".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
