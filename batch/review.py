"""`identity-batch review`: the review queue and people's decisions, for analysts, on either backend.

    identity-batch review list [CUSTOMER] [--order age|score] [--limit N] [--offset N] [--model M.json]
    identity-batch review accept LINK_ID | A B --actor NAME [--reason TEXT]
    identity-batch review reject LINK_ID | A B --actor NAME [--reason TEXT]
    identity-batch review constraints [CUSTOMER] [--all]
    identity-batch review withdraw CONSTRAINT_ID | A B --actor NAME --reason TEXT

A queued link is named by its id or by its two identifier keys; a constraint by its id or by its
pair (every active constraint of the pair). Each command prints text, or JSON with `--json`. The
same operations are `identity.v1.ReviewService` on a running server.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from identity_graph.decisions import ReviewItem
from identity_graph.engine import IdentityGraph
from identity_graph.errors import InvalidArgument, NotFound
from identity_graph.model import Constraint, LinkKind


def add_parser(sub: Any, store_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Adds `review` and its subcommands to the `identity-batch` parser."""
    rv = sub.add_parser("review", help="the review queue of possible links, and people's decisions",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ops = rv.add_subparsers(dest="review_command", required=True)
    ls = ops.add_parser("list", help="possible links waiting for a person, with their waterfall")
    ls.add_argument("customer", nargs="?", default="", help="a customer id or identifier key")
    ls.add_argument("--order", choices=("age", "score"), default="age")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--model", help="model JSON that scores links stored without a waterfall")
    for name, what in (("accept", "one person: a must-link, merging (disclosed as probable)"),
                       ("reject", "two people: a cannot-link")):
        op = ops.add_parser(name, help=what)
        op.add_argument("link", nargs="+", metavar="LINK_ID | A B")
        op.add_argument("--actor", required=True, help="who decides")
        op.add_argument("--reason", default="")
    cs = ops.add_parser("constraints", help="people's decisions (cannot-links, must-links)")
    cs.add_argument("customer", nargs="?", default="", help="a customer id or identifier key")
    cs.add_argument("--all", action="store_true", help="withdrawn ones too")
    wd = ops.add_parser("withdraw", help="withdraw a decision (a cannot-link lets the pair link again)")
    wd.add_argument("constraint", nargs="+", metavar="CONSTRAINT_ID | A B")
    wd.add_argument("--actor", required=True)
    wd.add_argument("--reason", required=True)
    for p in (ls, *(ops.choices[n] for n in ("accept", "reject")), cs, wd):
        store_args(p)
        p.add_argument("--json", action="store_true", help="JSON instead of text")


def run(args: argparse.Namespace, graph: IdentityGraph) -> int:
    """Runs one `review` subcommand over `graph`; prints text or JSON."""
    op = args.review_command
    if op == "list":
        items, total = graph.review.queue(args.customer, by_score=args.order == "score",
                                          limit=args.limit, offset=args.offset)
        _print(args, {"total": total, "items": [item_dict(i) for i in items]}, lambda d: _queue_text(d))
    elif op in ("accept", "reject"):
        link_id = _link_id(graph, args.link)
        judge = graph.review.accept if op == "accept" else graph.review.reject
        out = judge(link_id, actor=args.actor, reason=args.reason)
        data = {"decision": op, "constraint": constraint_dict(out.constraint) if out.constraint else None,
                "customer_ids": out.customer_ids,
                "violations": [{"kind": v.kind, "key": v.key, "reason": v.reason} for v in out.violations]}
        _print(args, data, lambda d: f"{op}ed {link_id}: " + (
            _constraint_line(d["constraint"]) if d["constraint"] else "nothing recorded\n") +
            f"customers now: {', '.join(d['customer_ids'])}\n")
    elif op == "constraints":
        found = graph.review.constraints(args.customer, include_withdrawn=args.all)
        _print(args, {"constraints": [constraint_dict(c) for c in found]},
               lambda d: "".join(_constraint_line(c) for c in d["constraints"]) or "no decisions\n")
    else:
        done = [graph.review.withdraw_constraint(cid, actor=args.actor, reason=args.reason)
                for cid in _constraint_ids(graph, args.constraint)]
        _print(args, {"withdrawn": [constraint_dict(c) for c in done]},
               lambda d: "".join("withdrawn " + _constraint_line(c) for c in d["withdrawn"]))
    return 0


def _link_id(graph: IdentityGraph, named: list[str]) -> str:
    if len(named) == 1:
        return named[0]
    if len(named) != 2:
        raise InvalidArgument("link", "name a link by its id or by its two identifier keys")
    a, b = graph.key(named[0], "a"), graph.key(named[1], "b")
    found = [lk for lk in graph.store.links([a]) if lk.other(a) == b and lk.kind is LinkKind.POSSIBLE]
    if not found:
        raise NotFound(f"no possible link between {a} and {b} in the review queue")
    return found[0].id


def _constraint_ids(graph: IdentityGraph, named: list[str]) -> list[str]:
    if len(named) == 1:
        return named
    if len(named) != 2:
        raise InvalidArgument("constraint", "name a constraint by its id or by its two identifier keys")
    pair = tuple(sorted((graph.key(named[0], "a"), graph.key(named[1], "b"))))
    ids = [c.id for c in graph.review.constraints(pair[0]) if c.pair == pair]
    if not ids:
        raise NotFound(f"no decision holds between {pair[0]} and {pair[1]}")
    return ids


def constraint_dict(c: Constraint) -> dict[str, Any]:
    return {"constraint_id": c.id, "kind": c.kind.value, "a": c.a, "b": c.b, "origin": c.origin,
            "link_id": c.link_id or None, "actor": c.actor, "reason": c.reason,
            "created_at": c.created_at.isoformat(), "active": c.active,
            "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
            "withdrawn_by": c.withdrawn_by or None, "withdrawal_reason": c.withdrawal_reason or None}


def item_dict(item: ReviewItem) -> dict[str, Any]:
    lk = item.link
    return {"link_id": lk.id, "a": lk.a, "b": lk.b, "customer_a": item.customer_a,
            "customer_b": item.customer_b, "probability": lk.probability,
            "match_weight": lk.match_weight, "model_version": lk.model_version,
            "created_at": lk.created_at.isoformat(), "waterfall": item.waterfall}


def _constraint_line(c: dict[str, Any]) -> str:
    state = "" if c["active"] else f"  [withdrawn by {c['withdrawn_by']}: {c['withdrawal_reason']}]"
    return (f"{c['constraint_id']}  {c['kind']:<11} {c['a']}  /  {c['b']}  ({c['origin']} by "
            f"{c['actor']}, {c['created_at'][:16]}: {c['reason']}){state}\n")


def _queue_text(d: dict[str, Any]) -> str:
    lines = [f"{d['total']} possible links waiting"]
    for i in d["items"]:
        same = "one customer" if i["customer_a"] == i["customer_b"] else \
            f"{i['customer_a']} + {i['customer_b']}"
        lines.append(f"{i['link_id']}  {i['a']}  ~  {i['b']}  p={i['probability']:.4f}  ({same})")
        w = i["waterfall"]
        if w:
            lines.append(f"    {'prior':<22}{w['prior_match_weight']:+8.2f}")
            lines += [f"    {c['name'][:22]:<22}{c['bits']:+8.2f}  level {c.get('level', '')}"
                      for c in w.get("comparisons", [])]
    return "\n".join(lines) + "\n"


def _print(args: argparse.Namespace, data: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(text(data), end="")
