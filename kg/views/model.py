"""What the HTML views draw: the knowledge graph, and one patient's explanation graph.

Both are plain data (:class:`ViewGraph`), built from the compiled ontology and,
for a patient, from the report's JSON, so the page shows exactly what the
report says.  Every edge carries what a reader needs to check it: its relation,
sign and sources.

>>> from kg import load_knowledge
>>> graph = knowledge_graph(load_knowledge())
>>> edge = next(e for e in graph.edges if e.category == "causal")
>>> edge.info["sources"] != []
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping

from ..knowledge import KnowledgeBase, Term
from .layout import layered_layout

__all__ = ["ViewNode", "ViewEdge", "ViewGraph", "knowledge_graph", "patient_graph", "KIND_LABELS"]

ROOT_KINDS = ("Gene", "Disease", "Trigger", "Therapy")
KIND_LABELS = {  # legend order, left to right in the picture
    "Gene": "gene",
    "Disease": "disease or condition",
    "Trigger": "trigger",
    "Therapy": "therapy",
    "CellType": "cell",
    "MolecularEntity": "molecule (mediator or analyte)",
    "Mechanism": "mechanism",
    "PhysiologicalQuantity": "physiological quantity",
    "ClinicalSign": "clinical sign or finding",
    "LabSign": "lab sign",
    "Finding": "patient finding",
    "Syndrome": "syndrome (candidate)",
}


@dataclass(frozen=True)
class ViewNode:
    """A node: ``kind`` picks its style, ``band`` its column group, ``info`` is shown on click."""

    id: str
    label: str
    kind: str
    band: str
    info: Mapping[str, Any] = field(default_factory=dict)
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class ViewEdge:
    """An edge: ``category`` is causal, measure (quantity to lab sign), evidence (sign to syndrome) or observed."""

    id: str
    source: str
    target: str
    category: str
    sign: int
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewGraph:
    """A laid-out graph and, for a patient, the side panel's data."""

    view: str  # knowledge | patient
    title: str
    nodes: tuple[ViewNode, ...]
    edges: tuple[ViewEdge, ...]
    panel: Mapping[str, Any] | None = None


IRI_PREFIXES = {"http://purl.uniprot.org/uniprot/": "UniProtKB:", "http://identifiers.org/hgnc/": "HGNC:"}


def _curie(identifier: str) -> str:
    """An identifier as a reader writes it: ``UniProtKB:P01375`` rather than its IRI."""
    for prefix, curie in IRI_PREFIXES.items():
        if identifier.startswith(prefix):
            return curie + identifier[len(prefix):]
    return identifier


def _kind_order(kind: str) -> int:
    return list(KIND_LABELS).index(kind) if kind in KIND_LABELS else len(KIND_LABELS)


def _term_info(kb: KnowledgeBase, term_id: str, *, kind: str | None = None) -> dict[str, Any]:
    term: Term | None = kb.terms.get(term_id)
    if term is None:
        return {"id": term_id, "kind": KIND_LABELS.get(kind or "", kind or "term"), "ids": [term_id]}
    ids = [term_id]
    for identifier in term.exact_matches + term.xrefs:
        if _curie(identifier) not in ids:
            ids.append(_curie(identifier))
    info: dict[str, Any] = {
        "id": term_id, "label": term.label, "kind": KIND_LABELS.get(kind or term.kind, term.kind),
        "definition": term.definition, "definition_source": term.definition_source, "ids": ids,
    }
    if term.synonyms:
        info["synonyms"] = list(term.synonyms)
    tests = [t for t in kb.lab_tests.values() if term_id in (t.measures, t.high_sign, t.low_sign)]
    if tests:
        info["lab_tests"] = [{"label": t.label, "code": t.notation, "unit": t.canonical_unit, "loinc": list(t.loinc)}
                             for t in sorted(tests, key=lambda t: t.notation)]
    return info


def _edge_info(*, relation: str, relation_label: str, sources: list[str], claim: str = "",
               knowledge_level: str = "", **extra: Any) -> dict[str, Any]:
    info = {"relation": relation, "relation_label": relation_label, "sources": sources}
    if claim:
        info["claim"] = claim
    if knowledge_level:
        info["knowledge_level"] = knowledge_level
    info.update(extra)
    return info


def _room(label: str, kind: str) -> float:
    """The vertical room a node's box needs: its label wraps at about 22 characters a line."""
    lines, width = 1, 0
    for word in label.split():
        if width and width + 1 + len(word) > 22:
            lines, width = lines + 1, len(word)
        else:
            width += len(word) + (1 if width else 0)
    return 30.0 + 19.0 * lines + (6.0 if kind in ("Finding", "Syndrome") else 0.0)


def _laid_out(view: str, title: str, nodes: dict[str, ViewNode], edges: list[ViewEdge],
              panel: Mapping[str, Any] | None = None) -> ViewGraph:
    ids = list(nodes)
    positions = layered_layout(
        ids, [(e.source, e.target) for e in edges], bands={n.id: n.band for n in nodes.values()},
        sort_key={n.id: (_kind_order(n.kind), n.label.lower()) for n in nodes.values()},
        heights={n.id: _room(n.label, n.kind) for n in nodes.values()})
    placed = tuple(ViewNode(n.id, n.label, n.kind, n.band, n.info, *positions[n.id]) for n in nodes.values())
    return ViewGraph(view, title, placed, tuple(edges), panel)


def _sign_of(weight: Fraction | int | float) -> int:
    return 1 if weight > 0 else -1


def knowledge_graph(kb: KnowledgeBase) -> ViewGraph:
    """The whole causal graph, the lab signs its measured quantities show, and the syndromes they point to.

    Causal edges are the ontology's sourced ``RO:0002304/0002305`` axioms; a
    *measure* edge joins a measured quantity to the lab sign its test reports
    when high (+) or low (-); an *evidence* edge joins a lab or clinical sign to
    a candidate syndrome for each evidence rule that reads it (the sign of the
    rule's weight: for or against).
    """
    nodes: dict[str, ViewNode] = {}
    edges: list[ViewEdge] = []
    candidates = {c.term for c in kb.candidates}
    out_degree: dict[str, int] = {}
    for edge in kb.edges:
        out_degree[edge.subject] = out_degree.get(edge.subject, 0) + 1
    measured = {t.measures for t in kb.lab_tests.values()}

    def add(term_id: str, *, kind: str | None = None, band: str | None = None) -> None:
        if term_id in nodes:
            return
        term = kb.terms.get(term_id)
        kind = kind or (term.kind if term else "MolecularEntity")
        if band is None:
            if term_id in candidates:
                kind, band = "Syndrome", "syndrome"
            elif kind in ROOT_KINDS:
                band = "cause"
            elif out_degree.get(term_id):
                band = "process"
            else:  # a leaf: what a test measures, or a sign seen at the bedside
                band = "sign" if kind == "ClinicalSign" and term_id not in measured else "measured"
        nodes[term_id] = ViewNode(term_id, term.label if term else term_id, kind, band,
                                  _term_info(kb, term_id, kind=kind))

    for edge in kb.edges:
        add(edge.subject)
        add(edge.object)
        edges.append(ViewEdge(f"c{len(edges)}", edge.subject, edge.object, "causal", edge.sign, _edge_info(
            relation=edge.relation, relation_label=edge.relation_label, sources=list(edge.sources),
            claim=edge.comment, knowledge_level=edge.knowledge_level)))
    for test in sorted(kb.lab_tests.values(), key=lambda t: t.notation):
        for direction, sign_id, sign in (("high", test.high_sign, 1), ("low", test.low_sign, -1)):
            if sign_id is None:
                continue
            add(test.measures)
            add(sign_id, kind=kb.terms[sign_id].kind if sign_id in kb.terms else "LabSign", band="sign")
            edges.append(ViewEdge(f"m{len(edges)}", test.measures, sign_id, "measure", sign, _edge_info(
                relation="measure", relation_label=f"{test.label} {direction}: {kb.terms[sign_id].label}",
                sources=[kb.terms[sign_id].definition_source], test=test.notation, loinc=list(test.loinc),
                direction=direction)))
    for rule in kb.evidence:
        if rule.analyte and (rule.direction or rule.comparator):
            test = kb.lab_tests[rule.analyte]
            direction = rule.direction or ("low" if rule.comparator in ("<", "<=") else "high")
            origin = test.high_sign if direction == "high" else test.low_sign
        elif rule.finding:
            origin = rule.finding
        else:  # criteria verdicts, conditions, genes, alerts and age: listed on the syndrome, not drawn
            continue
        if origin is None:
            continue
        add(origin, band="sign")
        for effect in rule.effects:
            add(effect.candidate)
            edges.append(ViewEdge(f"v{len(edges)}", origin, effect.candidate, "evidence", _sign_of(effect.weight),
                                  _edge_info(relation="evidence", relation_label=rule.label, sources=list(rule.sources),
                                             claim=rule.comment, rule=rule.id, weight=str(effect.weight),
                                             absent=rule.absent)))
    for candidate in kb.candidates:
        add(candidate.term)
        info = dict(nodes[candidate.term].info)
        info["category"] = candidate.category
        info["other_evidence"] = sorted(
            f"{r.label} ({'+' if e.weight > 0 else ''}{e.weight})" for r in kb.evidence for e in r.effects
            if e.candidate == candidate.term and not (r.finding or (r.analyte and (r.direction or r.comparator))))
        info["therapies"] = sorted(kb.terms[i.therapy].label for i in kb.indications if i.candidate == candidate.term)
        nodes[candidate.term] = ViewNode(candidate.term, nodes[candidate.term].label, "Syndrome", "syndrome", info)
    return _laid_out("knowledge", "mas-kg knowledge graph", nodes, edges)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _finding_text(finding: Mapping[str, Any]) -> str:
    """``ferritin 14500 ng/mL (high)``, ``splenomegaly present (3 cm)``."""
    if finding.get("kind") == "finding":
        size = f" ({_number(finding['value'])} {finding['unit']})" if finding.get("value") is not None else ""
        return f"{finding['code']} {'present' if finding.get('present') else 'absent'}{size}"
    comparator = finding.get("comparator") or ""
    return (f"{finding['code']} {comparator}{_number(finding['value'])} {finding.get('unit') or ''}".rstrip()
            + f" ({finding.get('interpretation')})")


def patient_graph(kb: KnowledgeBase, report: Mapping[str, Any]) -> ViewGraph:
    """A patient's explanation graph: every shown path of every abnormal finding, the findings with
    their values and units, and the ranked candidates with the evidence each finding gives them.

    ``report`` is a report's JSON object (``Report.to_dict()``).
    """
    nodes: dict[str, ViewNode] = {}
    edges: list[ViewEdge] = []
    edge_ids: dict[tuple[str, str, str], str] = {}
    findings = {f["code"]: f for f in report["findings"]}
    roots = {p["root"] for e in report["explanations"] for p in e["paths"]}
    targets = {e["node"] for e in report["explanations"]}
    with_successor = {s["from"] for e in report["explanations"] for p in e["paths"] for s in p["steps"]}

    def add(term_id: str, label: str) -> None:
        if term_id in nodes:
            return
        term = kb.terms.get(term_id)
        kind = term.kind if term else "MolecularEntity"
        band = ("cause" if term_id in roots else
                "measured" if term_id in targets and term_id not in with_successor else "process")
        nodes[term_id] = ViewNode(term_id, term.label if term else label, kind, band, _term_info(kb, term_id))

    def step_edge(step: Mapping[str, Any]) -> str:
        key = (step["from"], step["to"], step["relation"])
        if key not in edge_ids:
            edge_ids[key] = f"c{len(edges)}"
            edges.append(ViewEdge(edge_ids[key], step["from"], step["to"], "causal", 1 if step["sign"] == "+" else -1,
                                  _edge_info(relation=step["relation"], relation_label=step["relation_label"],
                                             sources=list(step["sources"]), claim=step.get("claim", ""),
                                             knowledge_level=step.get("knowledge_level", ""))))
        return edge_ids[key]

    panel_findings = []
    explained = {e["finding"]: e for e in report["explanations"]}
    for code in [e["finding"] for e in report["explanations"]] + list(report["unexplained"]):
        finding = findings.get(code, {"code": code, "kind": "lab", "value": None, "interpretation": "?"})
        finding_id = f"finding:{code}"
        direction = finding.get("interpretation") or ("present" if finding.get("present") else "absent")
        nodes[finding_id] = ViewNode(finding_id, _finding_text(finding), "Finding", "sign", {
            "id": finding_id, "label": _finding_text(finding), "kind": KIND_LABELS["Finding"],
            "code": code, "time": finding.get("time"), "value": finding.get("value"), "unit": finding.get("unit"),
            "interpretation": direction, "given": finding.get("given"), "phenotype": finding.get("phenotype"),
            "ids": [i for i in (finding.get("term"), finding.get("phenotype")) if i]}, 0.0, 0.0)
        paths = []
        explanation = explained.get(code)
        if explanation is not None:
            add(explanation["node"], explanation["node_label"])
            observed = f"o{len(edges)}"
            edges.append(ViewEdge(observed, explanation["node"], finding_id, "observed",
                                  -1 if explanation["direction"] == "low" else 1,
                                  _edge_info(relation="observed", relation_label=f"observed {explanation['direction']}",
                                             sources=[f"patient observation {finding.get('index')}"],
                                             time=finding.get("time"))))
            for path in explanation["paths"]:
                path_edges = []
                for step in path["steps"]:
                    add(step["from"], step["from_label"])
                    add(step["to"], step["to_label"])
                    path_edges.append(step_edge(step))
                path_nodes = [path["steps"][0]["from"]] + [s["to"] for s in path["steps"]] + [finding_id]
                paths.append({"text": path["text"], "root": path["root_label"], "in_context": path["in_context"],
                              "nodes": path_nodes, "edges": path_edges + [observed],
                              "steps": [{"from": s["from_label"], "to": s["to_label"], "sign": s["sign"],
                                         "relation": s["relation_label"], "sources": s["sources"],
                                         "claim": s.get("claim", "")} for s in path["steps"]]})
        panel_findings.append({"code": code, "node": finding_id, "text": _finding_text(finding),
                               "interpretation": direction, "paths": paths})
    candidates = []
    for candidate in report["candidates"]:
        term_id = candidate["term"]
        label = f"#{candidate['rank']} {candidate['label']} ({_number(candidate['score'])})"
        info = _term_info(kb, term_id, kind="Syndrome")
        info.update({"label": candidate["label"], "rank": candidate["rank"], "score": candidate["score"],
                     "supporting": candidate["supporting"], "against": candidate["against"]})
        nodes[term_id] = ViewNode(term_id, label, "Syndrome", "syndrome", info)
        for item in candidate["evidence"]:
            if item.get("finding") in findings and f"finding:{item['finding']}" in nodes and item["points"]:
                edges.append(ViewEdge(f"v{len(edges)}", f"finding:{item['finding']}", term_id, "evidence",
                                      _sign_of(item["points"]), _edge_info(
                                          relation="evidence", relation_label=item["text"],
                                          sources=list(item["sources"]), rule=item["rule"],
                                          weight=_number(item["points"]))))
        candidates.append({"node": term_id, "rank": candidate["rank"], "label": candidate["label"],
                           "category": candidate["category"], "score": candidate["score"],
                           "supporting": candidate["supporting"], "against": candidate["against"]})
    panel = {
        "patient": report["patient"], "at": report["at"], "age_years": report.get("age_years"),
        "conditions": [f"{c.get('code') or c.get('term')} ({c.get('status')})" for c in report.get("conditions", [])],
        "medications": [m["code"] for m in report.get("medications", [])],
        "findings": panel_findings,
        "criteria": [{"id": c["id"], "label": c["label"], "status": c["status"], "score": c.get("score"),
                      "score_range": c.get("score_range"), "cutoff": c.get("cutoff"),
                      "probability": c.get("probability")} for c in report["criteria"]],
        "candidates": candidates,
        "alerts": [{"code": a["code"], "severity": a.get("severity"), "message": a["message"]}
                   for a in report.get("alerts", [])],
        "rejected": [{"index": r["index"], "code": r.get("code"), "reason": r["reason"]}
                     for r in report["observations"]["rejected"]],
        "notes": list(report.get("notes", [])),
    }
    return _laid_out("patient", f"mas-kg: patient {report['patient']}", nodes, edges, panel)
