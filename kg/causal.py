"""Sign-consistent causal explanations over the ontology's signed graph (networkx).

A finding observed ``high`` (or a clinical sign observed present) is explained by
paths from a root cause (a disease, trigger or root mechanism) whose composed
sign is +1; a ``low`` finding by paths whose composed sign is -1.  The search
runs on the graph "lifted" by sign, so only sign-consistent paths are ever
built.  Paths are ranked: a root in the patient's context first, then paths
whose intermediate mechanisms explain more of the patient's other abnormal
findings (a parsimonious cover), then shorter, then better sourced.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

import networkx as nx

from .knowledge import CausalEdge, KnowledgeBase

__all__ = ["CausalGraph", "Path", "Target"]

MAX_STEPS = 14
SLACK = 4
MAX_PATHS = 400


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
    explains: tuple[str, ...]  # codes of other findings explained by the path's mechanisms
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
        self.graph = nx.DiGraph()
        for edge in kb.edges:
            self.graph.add_edge(edge.subject, edge.object, edge=edge)
        self.roots = frozenset(t.id for t in kb.terms.values() if t.root_cause and t.id in self.graph)
        self._to_node: dict[str, dict[tuple[str, int], int]] = {}
        self.from_roots = self._root_distances()

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

    def _root_distances(self) -> dict[tuple[str, int], int]:
        """Steps from the nearest root to each (node, q), q the composed sign of that route."""
        dist = {(root, 1): 0 for root in self.roots}
        queue = deque(sorted(dist))
        while queue:
            current, product = queue.popleft()
            for successor in self.graph.successors(current):
                state = (successor, product * self.graph.edges[current, successor]["edge"].sign)
                if state not in dist:
                    dist[state] = dist[(current, product)] + 1
                    queue.append(state)
        return dist

    def explains(self, node: str, sign: int, target: Target) -> bool:
        """Does a change of ``node`` in direction ``sign`` move ``target`` its observed way?"""
        return (node, sign * target.sign) in self.distances(target.node) and node != target.node

    def explain(self, target: Target, *, context: set[str], others: Iterable[Target], limit: int = 5) -> list[Path]:
        if target.node not in self.graph:
            return []
        dist = self.distances(target.node)
        reachable = [dist[(r, target.sign)] for r in self.roots if (r, target.sign) in dist]
        if not reachable:
            return []
        budget = min(MAX_STEPS, min(reachable) + SLACK)
        others = [o for o in others if o.code != target.code]
        found: list[tuple[CausalEdge, ...]] = []

        from_roots = self.from_roots

        # Depth-first backwards from the target, only through states that a root
        # reaches with the right sign within the remaining budget; a path is
        # recorded at every root passed.
        def walk(node: str, needed: int, suffix: list[CausalEdge], visited: set[str]) -> None:
            if len(found) >= MAX_PATHS:
                return
            if node in self.roots and needed == target.sign and suffix:
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
        ranked = []
        for edges in set(found):
            signs: dict[str, int] = {}
            running = 1  # composed sign from the root to each intermediate node
            for edge in edges[:-1]:
                running *= edge.sign
                signs[edge.object] = running
            explained = sorted({o.code for o in others for node, s in signs.items() if self.explains(node, s, o)})
            ranked.append(Path(edges, tuple(explained), edges[0].subject in context))
        ranked.sort(key=lambda p: (not p.in_context, -len(p.explains), len(p.edges),
                                   -len({s for e in p.edges for s in e.sources}),
                                   [(e.subject, e.object) for e in p.edges]))
        return ranked[:limit]
