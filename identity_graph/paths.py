"""Bottleneck (widest) paths: the path whose weakest step is strongest decides assurance.

A step counts with its link's kind, except an `observed` link walked from its claimant towards
what it claimed: that step proves nothing and counts as `probable` (DESIGN.md, "holding is not
claiming"). Paths are therefore directed: typing someone's email reaches them only as `probable`,
while they, holding the email, reach the typist as `observed`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable

from identity_graph.model import Link, LinkKind

_TOP = int(LinkKind.VERIFIED) + 1


def claimed_from(link: Link, key: str) -> bool:
    """Whether `key` is a claimant of `link`. A link without a known claimant (empty, or not one
    of its ends) is read as claimed by both ends: the safe reading for links written before
    claimants were kept."""
    return link.claimant == key or link.claimant not in (link.a, link.b)


def step_kind(link: Link, frm: str) -> LinkKind:
    """What walking `link` from `frm` to its other end proves."""
    if link.kind is LinkKind.OBSERVED and claimed_from(link, frm):
        return LinkKind.PROBABLE
    return link.kind


def widest_paths(
    source: str,
    links_of: Callable[[Iterable[str]], Iterable[Link]],
    is_generic: Callable[[str], bool],
    target: str | None = None,
    max_nodes: int = 20_000,
) -> dict[str, list[Link]]:
    """Best paths from `source`: widest bottleneck first, then fewest links. Each step counts
    as `step_kind` (one-way for observed links), so the path from a to b and from b to a differ.

    A path may end at a generic identifier but never pass through one, since generic identifiers
    are shared by different people. Two passes: a widest-path Dijkstra finds each identifier's
    best bottleneck W; then, per width level, a breadth-first search over links of kind ≥ W finds
    the shortest path with that bottleneck (ranking by (width, hops) in one pass would not be
    exact: a longer prefix can lead to a shorter overall path).

    Returns:
        key -> the links of its best path (the source maps to []).
    """
    cache: dict[str, list[Link]] = {}

    def neighbours(node: str) -> list[Link]:
        if node not in cache:
            cache[node] = [lk for lk in links_of([node]) if lk.active]
        return cache[node]

    def expandable(node: str) -> bool:
        return node == source or not is_generic(node)

    width: dict[str, int] = {source: _TOP}
    heap: list[tuple[int, str]] = [(-_TOP, source)]
    done: set[str] = set()
    while heap and len(done) < max_nodes:
        neg_w, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node == target or not expandable(node):
            continue
        for lk in neighbours(node):
            other = lk.other(node)
            w = min(-neg_w, int(step_kind(lk, node)))
            if other not in done and w > width.get(other, 0):
                width[other] = w
                heapq.heappush(heap, (-w, other))
    wanted = {target} & done if target is not None else done
    out: dict[str, list[Link]] = {source: []} if source in wanted else {}
    for level in sorted({width[k] for k in wanted if k != source}, reverse=True):
        goals = {k for k in wanted if k != source and width[k] == level}
        via: dict[str, Link] = {}
        seen = {source}
        queue = deque([source])
        while queue and goals - seen:
            node = queue.popleft()
            if not expandable(node):
                continue
            for lk in neighbours(node):
                other = lk.other(node)
                if int(step_kind(lk, node)) >= level and other not in seen:
                    seen.add(other)
                    via[other] = lk
                    queue.append(other)
        for goal in goals & seen:
            path: list[Link] = []
            cur = goal
            while cur != source:
                path.append(via[cur])
                cur = via[cur].other(cur)
            out[goal] = path[::-1]
    return out


def steps(path: list[Link], source: str) -> list[LinkKind]:
    """What each link of `path`, walked from `source`, counts as."""
    out = []
    node = source
    for lk in path:
        out.append(step_kind(lk, node))
        node = lk.other(node)
    return out


def bottleneck(path: list[Link], source: str) -> LinkKind:
    """The weakest step of `path` walked from `source`; no links (the identifier itself) is
    `verified`."""
    return min(steps(path, source), default=LinkKind.VERIFIED)
