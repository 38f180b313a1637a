"""Sign-consistent causal explanations over the ontology's signed graph (networkx).

A finding observed ``high`` (or a clinical sign observed present) is explained by
paths from a root cause (a disease, trigger or root mechanism) whose composed
sign is +1; a ``low`` finding by paths whose composed sign is -1.  The search
runs on the graph "lifted" by sign, so only sign-consistent paths are ever
built.  Paths are chosen for all findings together (a parsimonious cover: the
smallest explanation forest, see :meth:`CausalGraph.explain_all`), roots in
the patient's context first, then better sourced and shorter.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

import networkx as nx

from .knowledge import CausalEdge, KnowledgeBase

__all__ = ["CausalGraph", "Path", "Target", "edge_graph", "signed_path"]

MAX_STEPS = 14
SLACK = 4
MAX_PATHS = 400
PATH_CACHE = 4096


@dataclass(frozen=True, slots=True)
class Target:
    """A finding to explain: its code, graph node and direction (+1 up / -1 down)."""

    code: str
    node: str
    sign: int
    direction: str


@dataclass(frozen=True, slots=True)
class Path:
    edges: tuple[CausalEdge, ...]
    explains: tuple[str, ...]  # other findings whose chosen path shares a mechanism with this one
    in_context: bool

    @property
    def root(self) -> str:
        return self.edges[0].subject

    def to_dict(self, kb: KnowledgeBase) -> dict[str, Any]:
        label = lambda node: kb.terms[node].label if node in kb.terms else node  # noqa: E731
        return {
            "root": self.root, "root_label": label(self.root), "length": len(self.edges),
            "in_context": self.in_context, "also_explains": list(self.explains),
            "text": " -> ".join([label(self.root)] + [f"({'+' if e.sign > 0 else '-'}) {label(e.object)}" for e in self.edges]),
            "steps": [{
                "from": e.subject, "from_label": label(e.subject), "relation": e.relation,
                "relation_label": e.relation_label, "to": e.object, "to_label": label(e.object),
                "sign": "+" if e.sign > 0 else "-", "source": "; ".join(e.sources), "sources": list(e.sources),
                "knowledge_level": e.knowledge_level, "claim": e.comment,
            } for e in self.edges],
        }


class CausalGraph:
    """The signed causal graph of a knowledge base.

    >>> from kg.knowledge import load_knowledge
    >>> graph = CausalGraph(load_knowledge())
    >>> best = graph.explain(Target("triglycerides", "mkg:Triglyceride", +1, "high"), context=set(), others=[])[0]
    >>> [e.object for e in best.edges][-3:]
    ['mkg:LPLInhibition', 'mkg:LipoproteinLipase', 'mkg:Triglyceride']
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.graph = edge_graph(kb.edges)
        self.roots = frozenset(t.id for t in kb.terms.values() if t.root_cause and t.id in self.graph)
        self._to_node: dict[str, dict[tuple[str, int], int]] = {}
        self.from_roots = self._root_distances()
        self._from_own: dict[frozenset[str], dict[tuple[str, int], int]] = {}
        # paths depend only on (node, sign, the patient's own roots): shared by findings, alerts and patients
        self._paths: dict[tuple[str, int, frozenset[str]], tuple[tuple[CausalEdge, ...], ...]] = {}

    def distances(self, node: str) -> dict[tuple[str, int], int]:
        """Steps from each (n, s) to ``node``, where s is the composed sign of that route."""
        if node in self._to_node:
            return self._to_node[node]
        dist = {(node, 1): 0}
        queue = deque([(node, 1)])
        while queue:
            current, product = queue.popleft()
            if current not in self.graph:
                continue
            for predecessor in self.graph.predecessors(current):
                state = (predecessor, product * self.graph.edges[predecessor, current]["edge"].sign)
                if state not in dist:
                    dist[state] = dist[(current, product)] + 1
                    queue.append(state)
        self._to_node[node] = dist
        return dist

    def _root_distances(self, roots: frozenset[str] | None = None) -> dict[tuple[str, int], int]:
        """Steps from the nearest of ``roots`` (default: every root) to each (node, q), q the composed sign."""
        dist = {(root, 1): 0 for root in (self.roots if roots is None else roots)}
        queue = deque(sorted(dist))
        while queue:
            current, product = queue.popleft()
            for successor in self.graph.successors(current):
                state = (successor, product * self.graph.edges[current, successor]["edge"].sign)
                if state not in dist:
                    dist[state] = dist[(current, product)] + 1
                    queue.append(state)
        return dist

    def _own_distances(self, roots: frozenset[str]) -> dict[tuple[str, int], int]:
        if roots not in self._from_own:
            if len(self._from_own) >= PATH_CACHE:
                self._from_own.clear()
            self._from_own[roots] = self._root_distances(roots)
        return self._from_own[roots]

    def signed_path(self, source: str, target: str, sign: int) -> tuple[CausalEdge, ...] | None:
        """The shortest path from ``source`` to ``target`` whose composed sign is ``sign`` (None if none).

        >>> from kg.knowledge import load_knowledge
        >>> graph = CausalGraph(load_knowledge())
        >>> [e.object for e in graph.signed_path("mkg:ConsumptiveCoagulopathy", "mkg:ErythrocyteSedimentation", -1)]
        ['mkg:Fibrinogen', 'mkg:RouleauxFormation', 'mkg:SettlingRadius', 'mkg:ErythrocyteSedimentation']
        """
        return signed_path(self.graph, source, target, sign)

    def explains(self, node: str, sign: int, target: Target) -> bool:
        """Does a change of ``node`` in direction ``sign`` move ``target`` its observed way?"""
        return (node, sign * target.sign) in self.distances(target.node) and node != target.node

    def candidate_paths(self, target: Target, *,
                        context: frozenset[str] = frozenset()) -> tuple[tuple[CausalEdge, ...], ...]:
        """Every sign-consistent path from a root to the target within the step budget (unranked).

        When roots in the patient's ``context`` explain the target, only they
        are searched and the budget counts from them (the patient's own
        conditions, however long their chains, before any other root).
        """
        if target.node not in self.graph:
            return ()
        dist = self.distances(target.node)
        own = frozenset(r for r in context & self.roots if (r, target.sign) in dist)
        roots = own or self.roots
        reachable = [dist[(r, target.sign)] for r in roots if (r, target.sign) in dist]
        if not reachable:
            return ()
        key = (target.node, target.sign, own)
        if key in self._paths:
            return self._paths[key]
        budget = min(MAX_STEPS, min(reachable) + SLACK)
        from_roots = self.from_roots if not own else self._own_distances(own)
        found: list[tuple[CausalEdge, ...]] = []

        # Depth-first backwards from the target, only through states that a root
        # reaches with the right sign within the remaining budget; a path is
        # recorded at every root passed.
        def walk(node: str, needed: int, suffix: list[CausalEdge], visited: set[str]) -> None:
            if len(found) >= MAX_PATHS:
                return
            if node in roots and needed == target.sign and suffix:
                found.append(tuple(reversed(suffix)))
            if len(suffix) >= budget:
                return
            for predecessor in sorted(self.graph.predecessors(node)):
                if predecessor in visited:
                    continue
                edge: CausalEdge = self.graph.edges[predecessor, node]["edge"]
                product = needed * edge.sign  # composed sign from predecessor to target
                # the root-to-predecessor sign q must satisfy q * product == target.sign
                if from_roots.get((predecessor, target.sign * product), MAX_STEPS + 1) > budget - len(suffix) - 1:
                    continue
                suffix.append(edge)
                visited.add(predecessor)
                walk(predecessor, product, suffix, visited)
                visited.discard(predecessor)
                suffix.pop()

        walk(target.node, 1, [], {target.node})
        if len(self._paths) >= PATH_CACHE:  # the graph never changes; only the cache's size is bounded
            self._paths.clear()
        self._paths[key] = tuple(sorted(set(found), key=_edge_key))
        return self._paths[key]

    def explain_all(self, targets: list[Target], *, context: set[str], limit: int = 5) -> dict[str, list[Path]]:
        """The best paths for every target at once, chosen as a parsimonious cover.

        First each target gets the path that adds the fewest edges to the
        explanation forest of the other targets (repeated until stable), so
        findings share mechanisms where the graph allows; ties go to paths from
        a root in the patient's context, then fewer weakly sourced edges (a
        citation without DOI, PMID or seed section), then shorter paths.  Each
        target then lists that best path and, for each other route, the best
        path that branches off it, nearest the finding first (so distinct
        mechanisms -- heme iron and hepcidin for ferritin -- come before
        variants of the same chain further upstream).
        """
        own = frozenset(context)
        candidates = {t.code: self.candidate_paths(t, context=own) for t in targets}
        candidates = {code: paths for code, paths in candidates.items() if paths}
        chosen = {code: min(paths, key=lambda p: _cost(p, context, frozenset())) for code, paths in candidates.items()}
        for _ in range(4):  # coordinate descent on the forest's size; a few rounds settle it
            changed = False
            for code in sorted(candidates):
                others = frozenset((e.subject, e.object) for c, p in chosen.items() if c != code for e in p)
                best = min(candidates[code], key=lambda p: _cost(p, context, others))
                if best != chosen[code]:
                    chosen[code], changed = best, True
            if not changed:
                break
        out = {}
        for code, paths in candidates.items():
            others = frozenset((e.subject, e.object) for c, p in chosen.items() if c != code for e in p)
            ranked = sorted(paths, key=lambda p: _cost(p, context, others))
            if ranked[0][0].subject in context:  # the patient's own conditions explain it: no other roots
                ranked = [p for p in ranked if p[0].subject in context]
            shown = _diverse(ranked, chosen[code], limit)
            out[code] = [self._path(p, context, chosen, code) for p in shown]
        return out

    def explain(self, target: Target, *, context: set[str], others: Iterable[Target], limit: int = 5) -> list[Path]:
        """The best paths for one target, chosen together with ``others`` (see :meth:`explain_all`)."""
        targets = [target] + [o for o in others if o.code != target.code]
        return self.explain_all(targets, context=context, limit=limit).get(target.code, [])

    def _path(self, edges: tuple[CausalEdge, ...], context: set[str], chosen: dict[str, tuple[CausalEdge, ...]],
              code: str) -> Path:
        middle = {e.object for e in edges[:-1]}
        shared = sorted(c for c, p in chosen.items() if c != code and middle & {e.object for e in p[:-1]})
        return Path(edges, tuple(shared), edges[0].subject in context)


def edge_graph(edges: Iterable[CausalEdge]) -> nx.DiGraph:
    """The signed graph of some causal edges: each edge stored on its networkx edge as ``edge``."""
    graph = nx.DiGraph()
    for edge in edges:
        graph.add_edge(edge.subject, edge.object, edge=edge)
    return graph


def signed_path(graph: nx.DiGraph, source: str, target: str, sign: int) -> tuple[CausalEdge, ...] | None:
    """Breadth-first over (node, composed sign) states: the shortest path of the given sign."""
    if source not in graph:
        return None
    parent: dict[tuple[str, int], tuple[tuple[str, int], CausalEdge] | None] = {(source, 1): None}
    queue = deque([(source, 1)])
    while queue:
        state = queue.popleft()
        node, product = state
        if node == target and product == sign and node != source:
            edges = []
            while parent[state] is not None:
                state, edge = parent[state]  # type: ignore[misc]
                edges.append(edge)
            return tuple(reversed(edges))
        for successor in sorted(graph.successors(node)):
            edge = graph.edges[node, successor]["edge"]
            nxt = (successor, product * edge.sign)
            if nxt not in parent:
                parent[nxt] = (state, edge)
                queue.append(nxt)
    return None


def _edge_key(edges: tuple[CausalEdge, ...]) -> list[tuple[str, str]]:
    return [(e.subject, e.object) for e in edges]


def _weak(edge: CausalEdge) -> bool:
    """An edge sourced only by citations without a DOI, PMID or seed section."""
    return all(source.startswith("ref:") for source in edge.sources)


def _cost(edges: tuple[CausalEdge, ...], context: set[str], others: frozenset[tuple[str, str]]) -> tuple:
    new = sum((e.subject, e.object) not in others for e in edges)
    return (edges[0].subject not in context, new, sum(map(_weak, edges)), len(edges), _edge_key(edges))


def _diverse(ranked: list[tuple[CausalEdge, ...]], best: tuple[CausalEdge, ...], limit: int) -> list[tuple[CausalEdge, ...]]:
    """``best``, then one path per route: each next path branches off the shown ones nearest the
    finding, and among equals brings the most mechanisms and mediators not shown yet."""
    shown, branches = [best], set()
    seen = {e.subject for e in best}
    remaining = [p for p in ranked if p != best]
    while remaining and len(shown) < limit:
        pick = None
        for position, path in enumerate(remaining):
            depth = max(_shared_tail(path, s) for s in shown)
            if depth >= len(path):
                continue
            branch = (path[len(path) - depth - 1].subject, path[len(path) - depth - 1].object, depth)
            if branch in branches:
                continue
            novel = len({e.subject for e in path} - seen)  # mechanisms and mediators not shown yet
            key = (depth, -novel, position)
            if pick is None or key < pick[0]:
                pick = (key, path, branch)
        if pick is None:
            break
        shown.append(pick[1])
        seen |= {e.subject for e in pick[1]}
        branches.add(pick[2])
        remaining.remove(pick[1])
    return shown


def _shared_tail(path: tuple[CausalEdge, ...], best: tuple[CausalEdge, ...]) -> int:
    """How many final edges two paths to the same finding share."""
    shared = 0
    while shared < min(len(path), len(best)) and path[-1 - shared] == best[-1 - shared]:
        shared += 1
    return shared
