"""Bottleneck (widest) paths: the path whose weakest link is strongest decides assurance."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable

from identity_graph.model import Link, LinkKind

_TOP = int(LinkKind.VERIFIED) + 1


def widest_paths(
    source: str,
    links_of: Callable[[Iterable[str]], Iterable[Link]],
    is_generic: Callable[[str], bool],
    target: str | None = None,
    max_nodes: int = 20_000,
) -> dict[str, list[Link]]:
    """Best paths from `source`: widest bottleneck first, then fewest links.

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
            w = min(-neg_w, int(lk.kind))
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
                if int(lk.kind) >= level and other not in seen:
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


def bottleneck(path: list[Link]) -> LinkKind | None:
    """The weakest kind on a path; a path of no links (the identifier itself) is `verified`."""
    return min((lk.kind for lk in path), default=LinkKind.VERIFIED)
