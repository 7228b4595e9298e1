"""Builds a store preloaded with ~100k synthetic identifiers, cached as parquet under bench/.cache/.

The generator's people become customers in bulk, without running events through the engine:

- each person's own identifiers hang off one anchor (the first email, else the first identifier):
  a WhatsApp id is `equivalent` to its phone; cookies and devices are `verified` to the person's
  account (a login); everything else is `observed` with the anchor;
- an identifier shared by several people (a family phone, a junk email) is marked generic and
  `observed` with each of its people, so it keeps its links but merges nothing;
- blocked values (`GraphConfig.blocked`) are left out, as Resolve would leave them out;
- customers are the connected components of the merging links (`identity_graph.components`),
  with deterministic ids; attribute observations are stored canonical (`clean_attribute`).

The tables are written once per (customers, seed) to `bench/.cache/preload-c<N>-s<SEED>-v<V>/`
in the `export_parquet` format, plus `profiles.parquet` (the people's attributes, for benchmarks
that present new identifiers). `load_into` puts them into any `GraphStore` with `last_seen` set
to now, so that Resolve of a known identifier takes the read-only path.

    .venv/bin/python bench/preload.py --identifiers 100000          # build the cache only
    .venv/bin/python bench/preload.py --identifiers 100000 --db /tmp/preloaded.db
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from identity_graph.attributes import clean_attribute
from identity_graph.components import components
from identity_graph.config import GraphConfig
from identity_graph.errors import InvalidArgument
from identity_graph.model import ATTRIBUTES, Link, LinkKind, Observation, stable_id
from identity_graph.store import GraphStore, open_store
from identity_graph.store.tables import TABLES
from identity_graph.synthetic import generate

CACHE = Path(__file__).resolve().parent / ".cache"
LAYOUT_VERSION = 1
IDENTIFIERS_PER_CUSTOMER = 5.78  # the generator's default rates, measured at 19k customers
SOURCE = "bench-preload"
PROFILE_COLUMNS = ("customer_id", *ATTRIBUTES)


def customers_for(n_identifiers: int) -> int:
    """How many synthetic customers give about `n_identifiers` identifiers."""
    return max(1, math.ceil(n_identifiers / IDENTIFIERS_PER_CUSTOMER))


def cache_dir(n_customers: int, seed: int) -> Path:
    return CACHE / f"preload-c{n_customers}-s{seed}-v{LAYOUT_VERSION}"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _person_links(
    identifiers: list[str], own: set[str], generic: set[str], seen: dict[str, datetime]
) -> list[Link]:
    mine = [k for k in identifiers if k in own]
    shared = [k for k in identifiers if k in generic]
    if not mine:
        return []
    anchor = next((k for k in mine if k.startswith("email:")), mine[0])
    account = next((k for k in mine if k.startswith("account_id:")), None)
    out = []

    def link(a: str, b: str, kind: LinkKind, channel: str) -> None:
        at = max(seen[a], seen[b])
        out.append(Link(a, b, kind, source=SOURCE, channel=channel, event_id=f"{SOURCE}:{a}",
                        created_at=at, actor=SOURCE))

    for k in mine:
        if k == anchor:
            continue
        t, _, v = k.partition(":")
        if t == "whatsapp" and f"phone:{v}" in own:
            link(f"phone:{v}", k, LinkKind.EQUIVALENT, "whatsapp")
        elif t in ("web_cookie", "device_id") and account is not None:
            link(account, k, LinkKind.VERIFIED, "web" if t == "web_cookie" else "app")
        else:
            link(anchor, k, LinkKind.OBSERVED, "web_form")
    for k in shared:
        link(anchor, k, LinkKind.OBSERVED, "web_form")
    return out


def build_tables(n_customers: int, seed: int) -> dict[str, pa.Table]:
    """The store's tables (and `profiles`) for `generate(n_customers, seed)`."""
    config = GraphConfig()
    data = generate(n_customers, seed)
    blocked = {i["key"] for i in data.identifiers if config.is_blocked(i["key"])}
    generic = {i["key"] for i in data.identifiers if i["generic"] and i["key"] not in blocked}
    own = {i["key"] for i in data.identifiers if not i["generic"] and i["key"] not in blocked}
    kept = own | generic

    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    obs_rows: dict[str, dict[str, Any]] = {}
    for o in data.observations:
        key = o["identifier"]
        if key not in kept:
            continue
        at = _ts(o["observed_at"])
        first[key] = min(first.get(key, at), at)
        last[key] = max(last.get(key, at), at)
        for name in ATTRIBUTES:
            raw = o[name]
            if raw is None:
                continue
            try:
                value = clean_attribute(name, raw)
            except InvalidArgument:  # e.g. a typo that makes the birth date impossible
                continue
            if not value:
                continue
            ob = Observation(key, name, value, o["channel"], o["channel"], at)
            obs_rows.setdefault(ob.id, {"id": ob.id, "key": key, "attribute": name, "value": value,
                                        "source": ob.source, "channel": ob.channel, "observed_at": at})

    links: dict[str, Link] = {}
    for person in data.customers:
        for lk in _person_links(person["identifiers"], own, generic, first):
            links.setdefault(lk.id, lk)

    merging = [(lk.a, lk.b) for lk in links.values()
               if lk.kind.merges and lk.a not in generic and lk.b not in generic]
    comps = components(sorted(kept), merging)
    assignment: dict[str, str] = {}
    customers = []
    for comp in sorted(comps, key=min):
        cid = "cus_" + stable_id(SOURCE, seed, min(comp))[:20]
        customers.append({"id": cid, "created_at": min(first[k] for k in comp)})
        for k in comp:
            assignment[k] = cid

    by_key = {i["key"]: i for i in data.identifiers}
    identifiers = [
        {"key": k, "type": by_key[k]["type"], "value": by_key[k]["value"], "first_seen": first[k],
         "last_seen": last[k], "customer_id": assignment[k], "generic": k in generic}
        for k in sorted(kept)
    ]
    link_rows = [
        {"link_id": lk.id, "a": lk.a, "b": lk.b, "kind": lk.kind.label, "source": lk.source,
         "channel": lk.channel, "event_id": lk.event_id, "model_version": "", "probability": None,
         "match_weight": None, "comparisons": None, "created_at": lk.created_at, "actor": lk.actor,
         "removed_at": None, "removed_by": "", "removal_reason": "", "claimant": lk.claimant}
        for lk in sorted(links.values(), key=lambda lk: lk.id)
    ]
    profiles = [{c: p.get(c) for c in PROFILE_COLUMNS} for p in data.customers]
    return {
        "identifiers": pa.Table.from_pylist(identifiers, schema=TABLES["identifiers"]),
        "observations": pa.Table.from_pylist(sorted(obs_rows.values(), key=lambda r: r["id"]),
                                             schema=TABLES["observations"]),
        "links": pa.Table.from_pylist(link_rows, schema=TABLES["links"]),
        "customers": pa.Table.from_pylist(customers, schema=TABLES["customers"]),
        "aliases": TABLES["aliases"].empty_table(),
        "events": TABLES["events"].empty_table(),
        "profiles": pa.Table.from_pylist(profiles, schema=pa.schema([(c, pa.string())
                                                                     for c in PROFILE_COLUMNS])),
    }


def ensure(n_identifiers: int = 100_000, seed: int = 7, *, quiet: bool = False) -> Path:
    """The cached parquet directory for ~`n_identifiers` identifiers, built if missing."""
    n_customers = customers_for(n_identifiers)
    out = cache_dir(n_customers, seed)
    if (out / "identifiers.parquet").exists():
        return out
    t0 = time.perf_counter()
    tables = build_tables(n_customers, seed)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=CACHE))
    for name, table in tables.items():
        pq.write_table(table, tmp / f"{name}.parquet")
    tmp.rename(out)
    if not quiet:
        counts = ", ".join(f"{n}={t.num_rows}" for n, t in tables.items())
        print(f"preload: built {out} in {time.perf_counter() - t0:.1f}s ({counts})", file=sys.stderr)
    return out


def read(directory: Path, name: str) -> pa.Table:
    return pq.read_table(Path(directory) / f"{name}.parquet")


def load_into(store: GraphStore, directory: Path, now: datetime | None = None) -> dict[str, int]:
    """Loads the cached tables into an empty `store`, with every `last_seen` set to `now`."""
    now = now or datetime.now(UTC)
    idents = read(directory, "identifiers")
    i = idents.schema.get_field_index("last_seen")
    stamp = pa.array([now] * idents.num_rows, TABLES["identifiers"].field("last_seen").type)
    idents = idents.set_column(i, "last_seen", stamp)
    with tempfile.TemporaryDirectory(prefix="preload-") as tmp:
        for name in TABLES:
            if name == "identifiers":
                pq.write_table(idents, Path(tmp) / "identifiers.parquet")
            elif not (Path(directory) / f"{name}.parquet").exists():  # a table the generator leaves empty
                pq.write_table(TABLES[name].empty_table(), Path(tmp) / f"{name}.parquet")
            else:
                shutil.copy(Path(directory) / f"{name}.parquet", Path(tmp) / f"{name}.parquet")
        return store.load_parquet(tmp)


def identifier_keys(directory: Path, generic: bool | None = None) -> list[str]:
    """The preloaded identifier keys (only generic or only non-generic ones if asked)."""
    t = read(directory, "identifiers")
    if generic is not None:
        t = t.filter(pc.equal(t["generic"], generic))
    return t["key"].to_pylist()


def profiles(directory: Path) -> list[dict[str, Any]]:
    return read(directory, "profiles").to_pylist()


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--identifiers", type=int, default=100_000, help="about this many identifiers")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--db", help="also load into this SQLite file (must not exist)")
    args = p.parse_args(list(argv) if argv is not None else None)
    directory = ensure(args.identifiers, args.seed)
    print(f"cache: {directory}")
    if args.db:
        if Path(args.db).exists():
            p.error(f"{args.db} exists")
        t0 = time.perf_counter()
        with open_store(args.db) as store:
            counts = load_into(store, directory)
        print(f"loaded into {args.db} in {time.perf_counter() - t0:.1f}s: {_summary(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
