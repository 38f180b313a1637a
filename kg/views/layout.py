"""A deterministic layered layout for directed graphs (left to right, no physics).

Columns come from *bands* (causes, processes, measured quantities, signs,
syndromes) and, inside the process band, from the longest path from the causes,
so every causal edge that is not part of a cycle points to the right.  Rows are
ordered by a few barycentre sweeps (the Sugiyama heuristic), with ties broken by
the nodes' sort keys, so the same graph always gets the same picture and the
browser has nothing left to simulate.

>>> positions = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c")], bands={"a": "cause", "c": "sign"})
>>> [positions[n][0] for n in "abc"]
[0.0, 230.0, 460.0]
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

__all__ = ["BANDS", "layered_layout", "columns"]

BANDS = ("cause", "process", "measured", "sign", "syndrome")
COLUMN_GAP = 230.0
ROW_GAP = 58.0
SWEEPS = 8


def _back_edges(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle, found by a depth-first search in the nodes' given order."""
    successors: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        successors[a].append(b)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(successors[start]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    return back


def columns(nodes: Sequence[str], edges: Sequence[tuple[str, str]], *, bands: Mapping[str, str]) -> dict[str, int]:
    """The column of each node: causes 0, processes by longest path, then measured, signs, syndromes.

    ``bands`` maps a node to one of :data:`BANDS`; a node not in it is a process.
    A process with no process or cause before it sits just left of its first successor.
    """
    band = {n: bands.get(n, "process") for n in nodes}
    unknown = {b for b in band.values() if b not in BANDS}
    if unknown:
        raise ValueError(f"unknown band(s) {sorted(unknown)}; expected {BANDS}")
    back = _back_edges(sorted(nodes, key=lambda n: (band[n] != "cause", n)), edges)
    forward = [(a, b) for a, b in edges if (a, b) not in back and a != b]
    predecessors: dict[str, list[str]] = defaultdict(list)
    successors: dict[str, list[str]] = defaultdict(list)
    for a, b in forward:
        predecessors[b].append(a)
        successors[a].append(b)
    depth: dict[str, int] = {}

    def process_depth(node: str) -> int:  # iterative longest path over the acyclic forward edges
        stack = [node]
        while stack:
            current = stack[-1]
            pending = [p for p in predecessors[current] if band[p] == "process" and p not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if current in depth:
                continue
            before = [depth[p] for p in predecessors[current] if band[p] == "process"]
            before += [0 for p in predecessors[current] if band[p] == "cause"]
            depth[current] = max(before) + 1 if before else 0  # 0: no cause before it, placed below
        return depth[node]

    processes = [n for n in nodes if band[n] == "process"]
    for node in processes:
        process_depth(node)
    # Processes that nothing leads to sit just before their nearest successor.
    for node in sorted((n for n in processes if depth[n] == 0), key=lambda n: n):
        later = [depth[s] for s in successors[node] if band[s] == "process" and depth[s] > 0]
        depth[node] = max(1, min(later) - 1) if later else 1
    last = max((depth[n] for n in processes), default=0)
    offset = {"cause": 0, "measured": last + 1, "sign": last + 2, "syndrome": last + 3}
    return {n: depth[n] if band[n] == "process" else offset[band[n]] for n in nodes}


def layered_layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]], *, bands: Mapping[str, str],
                   sort_key: Mapping[str, object] | None = None,
                   heights: Mapping[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """``(x, y)`` for every node (its centre): columns by :func:`columns`, rows by barycentre sweeps.

    ``sort_key`` orders a column before the sweeps and breaks their ties (default: the node id);
    ``heights`` gives the room a node needs in its column (default :data:`ROW_GAP`).
    Empty columns are closed up, so the picture has no gaps.
    """
    column = columns(nodes, edges, bands=bands)
    used = sorted(set(column.values()))
    compact = {c: i for i, c in enumerate(used)}
    column = {n: compact[c] for n, c in column.items()}
    key = (lambda n: (sort_key[n], n)) if sort_key is not None else (lambda n: n)
    layers: dict[int, list[str]] = defaultdict(list)
    for node in sorted(nodes, key=key):
        layers[column[node]].append(node)
    neighbours_left: dict[str, list[str]] = defaultdict(list)
    neighbours_right: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        if a == b or a not in column or b not in column:
            continue
        left, right = (a, b) if column[a] < column[b] else (b, a)
        if column[left] != column[right]:
            neighbours_left[right].append(left)
            neighbours_right[left].append(right)
    # A node's rank is its row measured from the middle of its column, so that
    # short and long columns line up on their centres.
    rank = {n: i - (len(layer) - 1) / 2 for layer in layers.values() for i, n in enumerate(layer)}

    def sweep(order: list[int], neighbours: Mapping[str, list[str]]) -> None:
        for c in order:
            layer = layers[c]
            centre = {}
            for n in layer:
                near = neighbours.get(n, [])
                centre[n] = sum(rank[m] for m in near) / len(near) if near else rank[n]
            layer.sort(key=lambda n: (centre[n], rank[n]))
            for i, n in enumerate(layer):
                rank[n] = i - (len(layer) - 1) / 2

    for _ in range(SWEEPS // 2):
        sweep(sorted(layers), neighbours_left)
        sweep(sorted(layers, reverse=True), neighbours_right)
    positions = {}
    for c, layer in layers.items():
        room = [heights.get(n, ROW_GAP) if heights else ROW_GAP for n in layer]
        y = -sum(room) / 2
        for n, height in zip(layer, room):
            positions[n] = (c * COLUMN_GAP, y + height / 2)
            y += height
    return positions
