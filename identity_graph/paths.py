"""Bottleneck (widest) paths: the path whose weakest link is strongest decides assurance."""

from __future__ import annotations

import heapq
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
    are shared by different people. With `target`, stops as soon as the target is settled.

    Returns:
        key -> the links of its best path (the source maps to []).
    """
    best: dict[str, tuple[int, int]] = {source: (_TOP, 0)}
    via: dict[str, Link] = {}
    heap: list[tuple[int, int, str]] = [(-_TOP, 0, source)]
    settled: list[str] = []
    done: set[str] = set()
    while heap and len(done) < max_nodes:
        neg_width, hops, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        settled.append(node)
        if node == target:
            break
        if node != source and is_generic(node):
            continue
        for lk in links_of([node]):
            other = lk.other(node)
            if other in done:
                continue
            cand = (min(-neg_width, int(lk.kind)), hops + 1)
            old = best.get(other)
            if old is None or cand[0] > old[0] or (cand[0] == old[0] and cand[1] < old[1]):
                best[other] = cand
                via[other] = lk
                heapq.heappush(heap, (-cand[0], cand[1], other))
    out: dict[str, list[Link]] = {}
    for node in settled:
        path: list[Link] = []
        cur = node
        while cur != source:
            lk = via[cur]
            path.append(lk)
            cur = lk.other(cur)
        out[node] = path[::-1]
    return out


def bottleneck(path: list[Link]) -> LinkKind | None:
    """The weakest kind on a path; a path of no links (the identifier itself) is `verified`."""
    return min((lk.kind for lk in path), default=LinkKind.VERIFIED)
