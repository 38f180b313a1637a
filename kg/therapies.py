"""Therapies for the leading candidates: what each interrupts, and which lab changes would show it works.

The ontology says which therapies are used for which candidate syndrome
(``mkg:indication``, with sources) and which mediator or mechanism each one
interrupts (a signed causal edge).  For each of the patient's abnormal labs the
engine looks for a sign-consistent path from the therapy to the lab that moves
it back toward normal: that lab is a marker of response.  Information, not
dosing advice.

>>> import kg
>>> report = kg.Engine().explain({"id": "t", "age_years": 7, "conditions": [{"code": "sJIA"}],
...     "observations": [{"code": "fever", "present": True},
...                      {"code": "ferritin", "value": 12000, "unit": "ng/mL"},
...                      {"code": "fibrinogen", "value": 1.2, "unit": "g/L"}]})
>>> anakinra = next(t for t in report.to_dict()["therapies"] if t["therapy"] == "mkg:Anakinra")
>>> [(m["code"], m["expected"]) for m in anakinra["response_markers"]]
[('fibrinogen', 'rises'), ('ferritin', 'falls')]
"""

from __future__ import annotations

from typing import Any

from .causal import CausalGraph, Target
from .knowledge import KnowledgeBase
from .patient import Patient

__all__ = ["therapy_options", "LEADING"]

LEADING = 2  # therapies are listed for the candidates ranked this high (with a positive score)


def therapy_options(kb: KnowledgeBase, graph: CausalGraph, *, candidates: list[dict[str, Any]],
                    targets: list[Target], patient: Patient) -> list[dict[str, Any]]:
    """One entry per therapy used for a leading candidate, in candidate rank then ontology order.

    A class of therapy (IL-1 blockade) is left out when a named agent of it
    (anakinra) is listed for the same candidate.
    """
    on = [m.term for m in patient.medications if m.term]
    leading = [c for c in candidates[:LEADING] if c["rank"] == 1 or c["score"] > 0]
    entries: dict[str, dict[str, Any]] = {}
    for candidate in leading:
        uses = [i for i in kb.indications if i.candidate == candidate["term"]]
        named = {i.therapy for i in uses}
        for indication in uses:
            therapy = indication.therapy
            if any(other != therapy and kb.is_a(other, therapy) for other in named):
                continue
            entry = entries.get(therapy)
            if entry is None:
                entry = entries[therapy] = _entry(kb, graph, therapy, targets, on)
            entry["for"].append({"candidate": candidate["category"], "indication": indication.comment,
                                 "sources": list(indication.sources)})
    return list(entries.values())


def _entry(kb: KnowledgeBase, graph: CausalGraph, therapy: str, targets: list[Target], on: list[str]) -> dict[str, Any]:
    interrupts = [{"node": e.object, "label": kb.terms[e.object].label, "sign": "+" if e.sign > 0 else "-",
                   "source": "; ".join(e.sources)} for e in kb.edges if e.subject == therapy]
    markers = []
    for target in targets:
        if target.direction not in {"high", "low"}:
            continue
        path = graph.signed_path(therapy, target.node, -target.sign)
        if path:
            markers.append({
                "code": target.code, "now": target.direction,
                "expected": "falls" if target.sign > 0 else "rises", "steps": len(path),
                "path": " -> ".join([kb.terms[therapy].label] + [
                    f"({'+' if e.sign > 0 else '-'}) {kb.terms[e.object].label}" for e in path]),
                "sources": sorted({s for e in path for s in e.sources})})
    markers.sort(key=lambda m: (m["steps"], m["code"]))
    return {"therapy": therapy, "label": kb.terms[therapy].label, "for": [],
            "on_therapy": any(kb.is_a(m, therapy) or kb.is_a(therapy, m) for m in on),
            "interrupts": interrupts, "response_markers": markers}
