"""Two syntheses of the ranked candidates: primary vs secondary HLH, and what to test next.

>>> import kg
>>> report = kg.Engine().explain({"id": "i", "age_years": 0.4, "observations": [
...     {"code": "hlh-molecular-diagnosis", "present": True, "gene": "PRF1"}]})
>>> origin = report.to_dict()["hlh_origin"]
>>> origin["favoured"], origin["genes"][0]["gene"]
('primary', 'PRF1')
"""

from __future__ import annotations

from typing import Any

from .candidates import MOLECULAR
from .findings import Finding, number
from .knowledge import KnowledgeBase
from .patient import Patient

__all__ = ["hlh_origin", "next_tests"]

PRIMARY = "primary_hlh"
SECONDARY = ("mas", "infection_hlh", "malignancy_hlh")
ORIGIN_KINDS = {"gene", "finding", "age", "condition"}  # the rules that speak to inherited vs acquired


def hlh_origin(kb: KnowledgeBase, *, candidates: list[dict[str, Any]], patient: Patient, findings: list[Finding],
               criteria: list[dict[str, Any]]) -> dict[str, Any]:
    """Primary (inherited) or secondary HLH: genes, age at onset, family history, the MH score, triggers.

    ``favoured`` is primary, secondary, undetermined (equal evidence) or
    not_hlh (no HLH-family candidate has positive evidence).
    """
    by_category = {c["category"]: c for c in candidates}
    primary = by_category[PRIMARY]
    secondary = min((by_category[c] for c in SECONDARY), key=lambda c: c["rank"])
    if max(primary["score"], secondary["score"]) <= 0:
        favoured = "not_hlh"  # no HLH-family candidate is supported: the question does not arise
    else:
        favoured = ("primary" if primary["score"] > secondary["score"] else
                    "secondary" if primary["score"] < secondary["score"] else "undetermined")
    genes = []
    molecular = [f for f in findings if f.term == MOLECULAR]
    for f in molecular:
        gene = f.observation.gene
        diseases = kb.genes_to_diseases.get(f"mkg:{gene}", ()) if gene else ()
        genes.append({"gene": gene, "present": f.observation.present,
                      "diseases": [{"id": d, "label": kb.terms[d].label} for d in diseases]})
    family = [f.observation.present for f in findings if f.term == "mkg:FamilyHistoryOfHLH"]
    mh = next((c for c in criteria if c["id"] == "mh_score"), None)
    return {
        "favoured": favoured,
        "primary_score": primary["score"], "secondary": secondary["category"], "secondary_score": secondary["score"],
        "genes": genes,
        "genetic_testing": "reported" if molecular else "not reported",
        "family_history": None if not family else any(family),
        "age_at_onset_years": number(patient.age_years),
        "mh_score": None if mh is None else {"status": mh["status"], "score": mh["score"],
                                             "score_range": mh["score_range"], "cutoff": mh["cutoff"]},
        "triggers": [{"code": c.code, "label": kb.terms[c.term].label, "status": c.status} for c in patient.conditions],
        "basis": [e["text"] for c in (primary, secondary) for e in c["evidence"]
                  if e["kind"] in ORIGIN_KINDS or e["rule"].startswith("mh_score")],
    }


def next_tests(kb: KnowledgeBase, *, candidates: list[dict[str, Any]], criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tests whose result would decide an indeterminate criteria set or separate the two leading candidates.

    Ordered by how much they would settle: the number of criteria sets they
    could decide, then the number of ranking rules they would resolve.
    """
    decides: dict[str, list[str]] = {}
    for c in criteria:
        if c["status"] == "indeterminate":
            for code in c["would_decide"]:
                decides.setdefault(code, []).append(c["id"])
    separates: dict[str, list[str]] = {}
    top = candidates[:2]
    if len(top) == 2:
        weights = [{o["rule"]: o for o in cand["open"]} for cand in top]
        for rule_id in sorted(set(weights[0]) | set(weights[1])):
            points = [w[rule_id]["points"] if rule_id in w else 0 for w in weights]
            if points[0] == points[1]:
                continue  # the same either way: does not separate them
            entry = weights[0].get(rule_id) or weights[1][rule_id]
            code = entry.get("analyte") or entry.get("finding")
            if code is not None:
                separates.setdefault(code, []).append(entry["label"])
    out = []
    for code in set(decides) | set(separates):
        why = []
        if code in decides:
            why.append(f"would decide {', '.join(decides[code])}")
        if code in separates:
            why.append(f"separates {top[0]['category']} from {top[1]['category']}: {'; '.join(separates[code])}")
        out.append({"test": code, "decides": decides.get(code, []), "separates": separates.get(code, []),
                    "why": why})
    out.sort(key=lambda t: (-len(t["decides"]), -len(t["separates"]), t["test"]))
    return out
