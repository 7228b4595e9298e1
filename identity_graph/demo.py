"""A short demo on the embedded store: one customer met on web, SMS and WhatsApp, and a neighbour."""

from __future__ import annotations

import argparse
from pathlib import Path

from identity_graph.engine import IdentityGraph, Proof, ResolveRequest
from identity_graph.store import open_store

STORY: list[tuple[str, ResolveRequest]] = [
    (
        "Web chat: a visitor asks about fridge sizes and types an email",
        ResolveRequest(
            "web",
            [("web_cookie", "ck-7f3a9"), ("email", " Maria.Lopez@Example.com ")],
            {"first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1988-03-14"},
        ),
    ),
    (
        "Web chat: she leaves a mobile number for delivery updates",
        ResolveRequest("web", [("web_cookie", "ck-7f3a9"), ("phone", "(415) 555-0134")]),
    ),
    ("SMS from that number on the way home", ResolveRequest("sms", [("phone", "+1 415 555 0134")])),
    (
        "WhatsApp from the same number in the evening",
        ResolveRequest("whatsapp", [("whatsapp", "whatsapp:+14155550134")]),
    ),
    (
        "She logs in to her account on the web",
        ResolveRequest(
            "web",
            [("web_cookie", "ck-7f3a9"), ("account_id", "acct-1001")],
            proof=Proof("login", "account_id:acct-1001"),
        ),
    ),
    (
        "A different person, with a throwaway test email",
        ResolveRequest(
            "web",
            [("web_cookie", "ck-00b1"), ("email", "test@test.com")],
            {"first_name": "Sam", "last_name": "Lee"},
        ),
    ),
]


def run(db: str) -> None:
    with open_store(db) as store:
        graph = IdentityGraph(store)
        for title, req in STORY:
            r = graph.resolve(req)
            made = ", ".join(f"{lk.a} —{lk.kind.label}— {lk.b}" for lk in r.links) or "no new links"
            print(f"• {title}\n    → customer {r.customer_id}{' (new)' if r.is_new else ''}; {made}")
            for v in r.violations:
                print(f"    ! {v.kind}: {v.key} ({v.reason})")
        print("\nUnified customers:")
        seen: set[str] = set()
        for _title, req in STORY:
            anchor = graph.types.make(*req.identifiers[0]).key
            cid = graph.customers.id_of(anchor)
            if cid in seen:
                continue
            seen.add(cid)
            view = graph.customers.get(cid)
            print(f"  {cid}: {', '.join(n.key for n in view.identifiers)}")
            print(f"    channels: {', '.join(view.channels)}")
        print(f"\n{len(graph.events.read())} events in the log; store file: {Path(db).resolve()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="demo.db", help="embedded store file (recreated)")
    args = parser.parse_args(argv)
    for suffix in ("", "-wal", "-shm"):
        Path(args.db + suffix).unlink(missing_ok=True)
    run(args.db)


if __name__ == "__main__":
    main()
