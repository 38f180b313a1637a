"""Rank the candidate syndromes by evidence points read from the ontology.

Every candidate category (``mas``, ``primary_hlh``, ``infection_hlh``,
``malignancy_hlh``, ``disease_flare``, ``sepsis_dic``) starts at 0.  Each
evidence rule in ``ontology/candidates.ttl`` that holds for the patient adds
its weights: criteria verdicts, context conditions, a pathogenic gene, family
history, age, lab levels, alerts, and the lab *signature* each candidate
predicts through a named mechanism of the signed causal graph (a lab abnormal
the predicted way adds the weight; abnormal the other way subtracts it).  The
score is the sum; ties keep the ontology's category order.  A rule that cannot
be assessed (a criteria set still indeterminate, a signature lab not measured)
adds nothing and is listed under ``open``: it says what would sharpen the
ranking.  Weights are engine settings, not probabilities.

>>> import kg
>>> report = kg.Engine().explain({"id": "d", "age_years": 9, "conditions": [{"code": "sJIA"}],
...     "observations": [{"code": "platelets", "value": 620, "unit": "10*9/L"},
...                      {"code": "fibrinogen", "value": 6.1, "unit": "g/L"}]})
>>> report.to_dict()["candidates"][0]["category"]
'disease_flare'
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable

from .causal import CausalGraph
from .findings import Finding, lab_interval, number
from .knowledge import EvidenceRule, KnowledgeBase
from .patient import Patient
from .units import UnitError

__all__ = ["Evidence", "rank_candidates", "METHOD", "MOLECULAR"]

MOLECULAR = "mkg:HLHMolecularDiagnosis"  # the finding that carries a gene (DESIGN.md section 3)
HLH = "mkg:HLH"  # candidates that are forms of HLH (hlh_family in the report)

METHOD = ("evidence points: the sum of the weights of the ontology's evidence rules that hold for the patient "
          "(ontology/candidates.ttl); weights are engine settings chosen to order the candidates as the cited "
          "sources describe, not probabilities")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One rule's contribution to one candidate."""

    rule: EvidenceRule
    points: Fraction
    text: str
    path: tuple = ()  # causal edges (signature rules)

    def to_dict(self, kb: KnowledgeBase) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule.id, "kind": self.rule.kind, "points": number(self.points),
                               "text": self.text, "sources": list(self.rule.sources)}
        rule = self.rule  # what the rule read, so that a report (and its RDF) can point at it
        if rule.criterion:
            out["criterion"] = rule.criterion
        if rule.analyte:
            out["finding"] = kb.lab_tests[rule.analyte].notation
        elif rule.finding and kb.terms[rule.finding].notation:
            out["finding"] = kb.terms[rule.finding].notation
        if rule.alert:
            out["alert"] = rule.alert
        if self.path:
            out["path"] = [{"from": e.subject, "to": e.object, "sign": "+" if e.sign > 0 else "-",
                            "relation": e.relation, "source": "; ".join(e.sources)} for e in self.path]
            out["path_text"] = _path_text(self.path, kb)
        return out


def _label(kb: KnowledgeBase, term: str) -> str:
    return kb.terms[term].label if term in kb.terms else term


def _path_text(path: Iterable, kb: KnowledgeBase) -> str:
    path = list(path)
    return " -> ".join([_label(kb, path[0].subject)] +
                       [f"({'+' if e.sign > 0 else '-'}) {_label(kb, e.object)}" for e in path])


@dataclass(frozen=True)
class _Facts:
    """What the rules read, gathered once per patient."""

    patient: Patient
    labs: dict[str, Finding]  # lab test id -> finding in force
    findings: dict[str, list[Finding]]  # clinical sign id -> findings in force
    statuses: dict[str, str]  # criteria set id -> status
    alerts: set[str]


def rank_candidates(kb: KnowledgeBase, graph: CausalGraph, *, patient: Patient, findings: list[Finding],
                    criteria: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidate categories, ranked, each with its evidence (see the module docstring)."""
    facts = _Facts(
        patient=patient,
        labs={f.term: f for f in findings if f.kind == "lab"},
        findings=_by_term(f for f in findings if f.kind == "finding"),
        statuses={c["id"]: c["status"] for c in criteria},
        alerts={a["code"] for a in alerts})
    by_term: dict[str, list[Evidence]] = {c.term: [] for c in kb.candidates}
    open_rules: dict[str, list[dict[str, Any]]] = {c.term: [] for c in kb.candidates}
    for rule in kb.evidence:
        outcome = _assess(rule, facts, kb)
        path = _signature_path(rule, graph, kb) if outcome and outcome[0] and rule.kind == "signature" else ()
        for effect in rule.effects:
            if effect.candidate not in by_term:
                continue
            if outcome is None:
                open_rules[effect.candidate].append({**_open(rule, kb), "points": number(effect.weight)})
                continue
            sign, text = outcome
            if sign == 0:
                continue
            points = effect.weight * sign
            by_term[effect.candidate].append(Evidence(rule, points, _evidence_text(rule, sign, text, effect.candidate, kb), path))
    ranked = []
    for category in kb.candidates:
        evidence = sorted(by_term[category.term], key=lambda e: (-abs(e.points), e.rule.order))
        score = sum((e.points for e in evidence), Fraction(0))
        term = kb.terms[category.term]
        ranked.append({
            "category": category.category, "label": term.label, "short_label": category.short_label,
            "hlh_family": kb.is_a(term.id, HLH),
            "id": next((x for x in term.exact_matches if x.startswith("MONDO:")), term.id), "term": term.id,
            "score": number(score),
            "supporting": [e.text for e in evidence if e.points > 0],
            "against": [e.text for e in evidence if e.points < 0],
            "evidence": [e.to_dict(kb) for e in evidence],
            "open": [o for o in open_rules[category.term] if o["kind"] != "condition"],
            "_order": category.order, "_score": score,
        })
    ranked.sort(key=lambda c: (-c["_score"], c["_order"], c["category"]))
    for rank, candidate in enumerate(ranked, 1):
        candidate["rank"] = rank
        del candidate["_order"], candidate["_score"]
    return ranked


def _by_term(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for finding in findings:
        out.setdefault(finding.term, []).append(finding)
    return out


def _open(rule: EvidenceRule, kb: KnowledgeBase) -> dict[str, Any]:
    what = (f"criteria set {rule.criterion} is indeterminate" if rule.kind == "criterion"
            else f"{kb.lab_tests[rule.analyte].notation} not measured or not interpretable" if rule.analyte
            else f"{kb.terms[rule.finding].notation} not reported" if rule.finding
            else f"{kb.terms[MOLECULAR].notation} not reported" if rule.kind == "gene"
            else "age not given" if rule.kind == "age" else "not assessable")
    return {"rule": rule.id, "kind": rule.kind, "label": rule.label, "missing": what,
            "analyte": kb.lab_tests[rule.analyte].notation if rule.analyte else None,
            "finding": kb.terms[rule.finding].notation if rule.finding else
            kb.terms[MOLECULAR].notation if rule.kind == "gene" else None,
            "criterion": rule.criterion}


def _assess(rule: EvidenceRule, facts: _Facts, kb: KnowledgeBase) -> tuple[int, str] | None:
    """(sign, detail): +1 the rule holds, -1 a signature is contradicted, 0 it does not hold; None: cannot tell."""
    kind = rule.kind
    if rule.max_age_years is not None:  # derived in a younger population: silent for older patients
        age = facts.patient.age_years
        if age is None:
            return None
        if age >= rule.max_age_years:
            return 0, ""
    if kind == "criterion":
        status = facts.statuses.get(rule.criterion or "")
        if status == "indeterminate" and rule.status in {"met", "not_met"}:
            return None
        return (1 if status == rule.status else 0), ""
    if kind == "condition":
        held = [c for c in facts.patient.conditions if any(kb.is_a(c.term, t) for t in rule.conditions)]
        if rule.absent:
            return (0 if held else 1), ""
        return (1, ", ".join(f"{_label(kb, c.term)} ({c.status})" for c in held)) if held else (0, "")
    if kind == "gene":
        genes = []
        reported = facts.findings.get(MOLECULAR, [])
        if not reported:
            return None
        for finding in reported:
            gene = finding.observation.gene
            if finding.observation.present and gene:
                diseases = [d for d in kb.genes_to_diseases.get(f"mkg:{gene}", ()) if kb.is_a(d, rule.gene_of or "")]
                if diseases:
                    genes.append(f"{gene} ({', '.join(_label(kb, d) for d in diseases)})")
        return (1, "; ".join(genes)) if genes else (0, "")
    if kind == "finding":
        reported = facts.findings.get(rule.finding or "", [])
        if not reported:
            return None
        present = any(f.observation.present for f in reported)
        return (1 if present != rule.absent else 0), ""
    if kind == "age":
        age = facts.patient.age_years
        if age is None:
            return None
        return (1 if _compare(age, rule.comparator or "", rule.threshold) else 0), f"{number(age)} years"
    if kind == "alert":
        return (1 if rule.alert in facts.alerts else 0), ""
    finding = facts.labs.get(rule.analyte or "")
    if finding is None:
        return None
    if kind == "signature":
        if finding.interpretation is None:
            return None
        given = finding.observation
        value = f"{given.comparator or ''}{number(given.value)} {given.unit}"
        if finding.interpretation == rule.direction:
            return 1, value
        if finding.interpretation in {"high", "low"} and not rule.one_sided:
            return -1, value
        return 0, value
    return _level(rule, finding, kb)


def _level(rule: EvidenceRule, finding: Finding, kb: KnowledgeBase) -> tuple[int, str] | None:
    """A level rule on the exact value (or the interval a censored value allows), in the rule's unit."""
    test = kb.lab_tests[rule.analyte]  # type: ignore[index]
    try:
        low, high, low_inc, high_inc = lab_interval(finding.observation, test, rule.unit or test.canonical_unit)
    except UnitError:
        return None
    t, op = rule.threshold, rule.comparator
    if t is None:
        return None
    above_all = low > t or (low == t and (op == ">=" or not low_inc))  # every value > t (or >= t for >=)
    below_all = high is not None and (high < t or (high == t and (op == "<=" or not high_inc)))
    if op in {">", ">="}:
        holds = True if above_all else False if (high is not None and (high < t or (high == t and (op == ">" or not high_inc)))) else None
    else:
        holds = True if below_all else False if (low > t or (low == t and (op == "<" or not low_inc))) else None
    if holds is None:
        return None
    given = finding.observation
    shown = f"{given.comparator or ''}{number(given.value)} {given.unit}"
    return (1 if holds else 0), shown


def _compare(value: Fraction, comparator: str, threshold: Fraction | None) -> bool:
    if threshold is None:
        return False
    return {"<": value < threshold, "<=": value <= threshold, ">": value > threshold,
            ">=": value >= threshold}.get(comparator, False)


def _signature_path(rule: EvidenceRule, graph: CausalGraph, kb: KnowledgeBase) -> tuple:
    """How the candidate's mechanism moves the lab the predicted way (the path the check verified)."""
    node = kb.lab_tests[rule.analyte].measures  # type: ignore[index]
    predicted = 1 if rule.direction == "high" else -1
    return graph.signed_path(rule.via, node, predicted) or () if rule.via else ()


def _evidence_text(rule: EvidenceRule, sign: int, detail: str, candidate: str, kb: KnowledgeBase) -> str:
    if rule.kind != "signature":
        return f"{rule.label}: {detail}" if detail else rule.label
    test = kb.lab_tests[rule.analyte]  # type: ignore[index]
    observed = rule.direction if sign > 0 else ("low" if rule.direction == "high" else "high")
    via = f" through {_label(kb, rule.via)}" if rule.via else ""
    name = _label(kb, candidate)
    if sign > 0:
        return f"{test.notation} {observed} ({detail}), as {name} predicts{via}"
    return f"{test.notation} {observed} ({detail}), where {name} predicts {rule.direction}{via}"
