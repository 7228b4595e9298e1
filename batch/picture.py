"""Pictures of the identity graph: one customer, or the whole graph, as HTML, GraphML or DOT.

Analysts ask "why are these identifiers one customer?" and want to see it. The graph is built once as
a `networkx.MultiGraph` (two identifiers may share several links, one per piece of evidence) and
written in the format the reader's tool wants: a self-contained HTML page (no CDN, works offline), GraphML
for networkx, Gephi or yEd, or DOT for Graphviz.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx

from identity_graph.errors import InvalidArgument, NotFound
from identity_graph.identifiers import IdentifierTypes
from identity_graph.model import IdentifierNode, Link, LinkKind
from identity_graph.store.base import GraphStore

__all__ = ["FORMATS", "customer_graph", "render", "whole_graph", "write"]

FORMATS = ("html", "graphml", "dot")

TYPE_COLOURS = {
    "email": "#1f77b4", "phone": "#2ca02c", "whatsapp": "#25a244", "web_cookie": "#ff7f0e",
    "account_id": "#9467bd", "device_id": "#8c564b", "source_record": "#7f7f7f",
}
KIND_STYLE = {  # colour, width, dash: strongest kinds drawn heaviest
    "verified": ("#1b5e20", 4.0, ""), "equivalent": ("#2e7d32", 3.5, ""),
    "observed": ("#1565c0", 2.5, ""), "probable": ("#ef6c00", 2.0, "6 3"),
    "possible": ("#9e9e9e", 1.5, "2 3"),
}


def _node_attrs(node: IdentifierNode, member: bool) -> dict[str, Any]:
    return {"type": node.type, "value": node.value, "customer_id": node.customer_id or "",
            "generic": node.generic, "member": member, "first_seen": node.first_seen.isoformat(),
            "last_seen": node.last_seen.isoformat()}


def _edge_attrs(lk: Link) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "kind": lk.kind.label, "strength": int(lk.kind), "source": lk.source, "channel": lk.channel,
        "event_id": lk.event_id, "actor": lk.actor, "model_version": lk.model_version,
        "created_at": lk.created_at.isoformat(),
    }
    if lk.probability is not None:
        attrs["probability"] = float(lk.probability)
    if lk.match_weight is not None:
        attrs["match_weight"] = float(lk.match_weight)
    return attrs


def _customer_of(store: GraphStore, subject: str, types: IdentifierTypes) -> str:
    """A customer id (or alias) as given, or the customer of an identifier key `type:value`."""
    if subject.startswith("cus_"):
        cid = store.canonical_customer_id(subject)
        if cid is None:
            raise NotFound(f"no customer {subject}")
        return cid
    type_, sep, value = subject.partition(":")
    if not sep:
        raise InvalidArgument("subject", "give a customer id (cus_…) or an identifier key type:value")
    key = types.make(type_.strip().lower(), value).key
    node = store.get_identifier(key)
    if node is None:
        raise NotFound(f"no identifier {key}")
    if node.customer_id is None:
        raise NotFound(f"{key} belongs to no customer (it may be generic or detached)")
    return node.customer_id


def customer_graph(store: GraphStore, subject: str, types: IdentifierTypes | None = None) -> nx.MultiGraph:
    """One customer's identifiers and every active link touching them, with evidence.

    `subject` is a customer id or an identifier key. Identifiers at the far end of a link that
    belong elsewhere (a generic phone, a `possible` match) are drawn too, marked `member=False`.

    Raises:
        NotFound: no such customer or identifier.
        InvalidArgument: `subject` is neither.
    """
    cid = _customer_of(store, subject, types or IdentifierTypes())
    members, links, nodes = store.customer_subgraph(cid)
    g = nx.MultiGraph(customer_id=cid, title=f"customer {cid}")
    inside = set(members)
    for key, node in sorted(nodes.items()):
        g.add_node(key, **_node_attrs(node, key in inside))
    for lk in links:
        g.add_edge(lk.a, lk.b, key=lk.id, **_edge_attrs(lk))
    return g


def whole_graph(store: GraphStore, kinds: Iterable[str] = (), types: Iterable[str] = ()) -> nx.MultiGraph:
    """Every identifier and active link, optionally only links of `kinds` and nodes of `types`."""
    kind_set = {LinkKind.parse(k).label for k in kinds}
    type_set = set(types)
    tables = store.export_tables()
    g = nx.MultiGraph(title="identity graph")
    for row in tables["identifiers"].to_pylist():
        if type_set and row["type"] not in type_set:
            continue
        g.add_node(row["key"], type=row["type"], value=row["value"], customer_id=row["customer_id"] or "",
                   generic=bool(row["generic"]), member=True, first_seen=row["first_seen"].isoformat(),
                   last_seen=row["last_seen"].isoformat())
    for row in tables["links"].to_pylist():
        if row["removed_at"] is not None or (kind_set and row["kind"] not in kind_set):
            continue
        if row["a"] not in g or row["b"] not in g:
            continue
        attrs = {"kind": row["kind"], "strength": int(LinkKind.parse(row["kind"])),
                 "source": row["source"] or "", "channel": row["channel"] or "",
                 "event_id": row["event_id"] or "", "actor": row["actor"] or "",
                 "model_version": row["model_version"] or "", "created_at": row["created_at"].isoformat()}
        for name in ("probability", "match_weight"):
            if row[name] is not None:
                attrs[name] = float(row[name])
        g.add_edge(row["a"], row["b"], key=row["link_id"], **attrs)
    return g


# ---- writers ------------------------------------------------------------------------------------


def _dot_quote(text: object) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _to_dot(g: nx.MultiGraph) -> str:
    lines = [f"graph {_dot_quote(g.graph.get('title', 'identity graph'))} {{",
             "  graph [overlap=false, splines=true];", "  node [shape=ellipse, style=filled, fontsize=10];"]
    for key, d in g.nodes(data=True):
        colour = TYPE_COLOURS.get(d.get("type", ""), "#bbbbbb")
        extra = ', peripheries=2, color="#c62828", xlabel="generic"' if d.get("generic") else ""
        dashed = ", style=\"filled,dashed\"" if not d.get("member", True) else ""
        lines.append(f"  {_dot_quote(key)} [fillcolor={_dot_quote(colour)}{extra}{dashed}];")
    for a, b, d in g.edges(data=True):
        colour, width, dash = KIND_STYLE.get(d["kind"], ("#000000", 1.0, ""))
        label = d["kind"] + (f" {d['match_weight']:.1f} bits" if "match_weight" in d else "")
        style = ", style=dashed" if dash else ""
        lines.append(f"  {_dot_quote(a)} -- {_dot_quote(b)} [label={_dot_quote(label)}, "
                     f"color={_dot_quote(colour)}, penwidth={width}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222}
header{padding:10px 16px;border-bottom:1px solid #ddd}
h1{font-size:18px;margin:0 0 4px}
#legend span{display:inline-block;margin-right:14px}
#legend i{display:inline-block;width:12px;height:12px;border-radius:6px;margin-right:4px;vertical-align:-1px}
#legend b{display:inline-block;width:22px;height:0;margin-right:4px;vertical-align:3px;border-top:3px solid}
svg{display:block;width:100%;height:calc(100vh - 92px);min-height:420px}
text{font-size:11px;pointer-events:none}
.node{stroke:#fff;stroke-width:1.5}
.node.generic{stroke:#c62828;stroke-width:4}
.node.outside{opacity:.55}
#info{position:fixed;right:12px;top:100px;max-width:380px;background:#fff;border:1px solid #ccc;
padding:8px 10px;font-size:12px;white-space:pre-wrap;display:none}
</style></head>
<body><header><h1>__TITLE__</h1><div id="legend"></div></header>
<svg id="graph" viewBox="0 0 1000 640" preserveAspectRatio="xMidYMid meet"></svg>
<div id="info"></div>
<script type="application/json" id="graph-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var svg = document.getElementById("graph"), NS = "http://www.w3.org/2000/svg";
  var info = document.getElementById("info");
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    (parent || svg).appendChild(e);
    return e;
  }
  function show(text) { info.textContent = text; info.style.display = "block"; }
  var pos = {}, edgesLayer = el("g", {id: "edges"}), nodesLayer = el("g", {id: "nodes"});
  data.nodes.forEach(function (n) { pos[n.id] = [40 + n.x * 700, 40 + n.y * 560]; });
  var pairs = {};
  data.edges.forEach(function (e) {
    var k = e.a < e.b ? e.a + "\\u0000" + e.b : e.b + "\\u0000" + e.a;
    var i = pairs[k] = (pairs[k] || 0) + 1;
    var p = pos[e.a], q = pos[e.b], s = data.kinds[e.kind] || ["#000", 1, ""];
    var mx = (p[0] + q[0]) / 2, my = (p[1] + q[1]) / 2, dx = q[0] - p[0], dy = q[1] - p[1];
    var len = Math.sqrt(dx * dx + dy * dy) || 1, bend = (i - 1) * 18 * (i % 2 ? 1 : -1);
    var cx = mx - dy / len * bend, cy = my + dx / len * bend;
    var path = el("path", {"class": "edge " + e.kind, d: "M" + p + " Q" + cx + "," + cy + " " + q,
      fill: "none", stroke: s[0], "stroke-width": s[1], "stroke-dasharray": s[2]}, edgesLayer);
    var t = el("title", {}, path);
    t.textContent = e.kind + " " + e.a + " — " + e.b + "\\n" + e.evidence;
    path.addEventListener("click", function () { show(t.textContent); });
    if (e.label) {
      var lbl = el("text", {x: cx, y: cy - 3, "text-anchor": "middle", fill: s[0]}, edgesLayer);
      lbl.textContent = e.label;
    }
  });
  data.nodes.forEach(function (n) {
    var p = pos[n.id];
    var c = el("circle", {"class": "node" + (n.generic ? " generic" : "") + (n.member ? "" : " outside"),
      cx: p[0], cy: p[1], r: 11, fill: data.types[n.type] || "#bbb", "data-key": n.id}, nodesLayer);
    var t = el("title", {}, c);
    t.textContent = n.id + "\\n" + n.detail;
    c.addEventListener("click", function () { show(t.textContent); });
    var lbl = el("text", {x: p[0] + 14, y: p[1] + 4}, nodesLayer);
    lbl.textContent = n.id + (n.generic ? " (generic)" : "");
  });
  var legend = document.getElementById("legend"), html = "";
  Object.keys(data.types).forEach(function (t) {
    if (data.present_types.indexOf(t) >= 0)
      html += '<span><i style="background:' + data.types[t] + '"></i>' + t + "</span>";
  });
  Object.keys(data.kinds).forEach(function (k) {
    if (data.present_kinds.indexOf(k) >= 0)
      html += '<span><b style="border-color:' + data.kinds[k][0] + '"></b>' + k + "</span>";
  });
  legend.innerHTML = html + '<span>red ring: generic (shared, carries no merge)</span>';
  document.body.setAttribute("data-drawn-nodes", String(nodesLayer.querySelectorAll("circle").length));
  document.body.setAttribute("data-drawn-edges", String(edgesLayer.querySelectorAll("path").length));
})();
</script></body></html>
"""


def _layout(g: nx.MultiGraph) -> dict[str, tuple[float, float]]:
    """Positions in [0, 1]², stronger links pulling harder; deterministic for one graph."""
    if g.number_of_nodes() == 0:
        return {}
    simple = nx.Graph()
    simple.add_nodes_from(g.nodes)
    for a, b, d in g.edges(data=True):
        w = d.get("strength", 1)
        if not simple.has_edge(a, b) or simple[a][b]["weight"] < w:
            simple.add_edge(a, b, weight=w)
    if len(simple) == 1:
        return {n: (0.5, 0.5) for n in simple}
    raw = nx.spring_layout(simple, seed=7, weight="weight")
    xs = [p[0] for p in raw.values()]
    ys = [p[1] for p in raw.values()]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    return {n: ((p[0] - min(xs)) / span_x, (p[1] - min(ys)) / span_y) for n, p in raw.items()}


_NODE_DETAIL = ("type", "customer_id", "first_seen", "last_seen")
_EDGE_EVIDENCE = ("source", "channel", "event_id", "actor", "model_version", "probability", "match_weight",
                  "created_at")


def _to_html(g: nx.MultiGraph) -> str:
    pos = _layout(g)
    nodes = []
    for key, d in sorted(g.nodes(data=True)):
        detail = "\n".join(f"{k}: {d[k]}" for k in _NODE_DETAIL if d.get(k))
        if d.get("generic"):
            detail += "\ngeneric: shared by different people"
        nodes.append({"id": key, "type": d.get("type", ""), "generic": bool(d.get("generic")),
                      "member": bool(d.get("member", True)), "x": pos[key][0], "y": pos[key][1],
                      "detail": detail})
    edges = []
    for a, b, d in g.edges(data=True):
        evidence = "\n".join(f"{k}: {d[k]}" for k in _EDGE_EVIDENCE if d.get(k) not in (None, ""))
        label = f"{d['match_weight']:.1f} bits" if "match_weight" in d else ""
        edges.append({"a": a, "b": b, "kind": d["kind"], "evidence": evidence, "label": label})
    data = {"nodes": nodes, "edges": edges, "types": TYPE_COLOURS,
            "kinds": {k: list(v) for k, v in KIND_STYLE.items()},
            "present_types": sorted({n["type"] for n in nodes}),
            "present_kinds": sorted({e["kind"] for e in edges})}
    # JSON inside <script>: "</" must not close the element early.
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    title = html.escape(str(g.graph.get("title", "identity graph")))
    return _HTML.replace("__TITLE__", title).replace("__DATA__", payload)


def _graphml_ready(g: nx.MultiGraph) -> nx.MultiGraph:
    """GraphML holds scalars only; graph-level attributes are kept as strings."""
    out = nx.MultiGraph(**{k: str(v) for k, v in g.graph.items()})
    out.add_nodes_from(g.nodes(data=True))
    out.add_edges_from(g.edges(keys=True, data=True))
    return out


def render(g: nx.MultiGraph, fmt: str) -> str:
    """The graph as text in `fmt` (one of `FORMATS`)."""
    if fmt == "html":
        return _to_html(g)
    if fmt == "dot":
        return _to_dot(g)
    if fmt == "graphml":
        return "\n".join(nx.generate_graphml(_graphml_ready(g), named_key_ids=True)) + "\n"
    raise InvalidArgument("--format", f"one of {', '.join(FORMATS)}")


def write(g: nx.MultiGraph, fmt: str, path: str | Path) -> Path:
    """Writes `render(g, fmt)` to `path` atomically (a reader never sees half a file)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(g, fmt), encoding="utf-8")
    tmp.replace(out)
    return out
