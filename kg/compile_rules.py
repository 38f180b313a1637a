"""Compile the ranking knowledge: candidate categories, evidence rules, therapy
indications and alert rules (core.ttl, sections Candidate ranking and Alerts)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import rdflib
from rdflib import RDF, RDFS, URIRef

from .knowledge import (
    MKG, AlertRule, CandidateCategory, Effect, EvidenceRule, Indication, TrendPart, compact,
)

__all__ = ["alert_rules", "candidate_categories", "evidence_rules", "indications"]

M = rdflib.Namespace(MKG)
OIO = rdflib.Namespace("http://www.geneontology.org/formats/oboInOwl#")
DEFINITION = rdflib.URIRef("http://purl.obolibrary.org/obo/IAO_0000115")


def _text(graph: rdflib.Graph, node, prop) -> str:
    value = graph.value(node, prop)
    return str(value) if value is not None else ""


def _term(graph: rdflib.Graph, node, prop) -> str | None:
    value = graph.value(node, prop)
    return compact(str(value)) if isinstance(value, URIRef) else None


def _terms(graph: rdflib.Graph, node, prop) -> tuple[str, ...]:
    return tuple(sorted(compact(str(v)) for v in graph.objects(node, prop) if isinstance(v, URIRef)))


def _texts(graph: rdflib.Graph, node, prop) -> tuple[str, ...]:
    return tuple(sorted(str(v) for v in graph.objects(node, prop)))


def _fraction(graph: rdflib.Graph, node, prop) -> Fraction | None:
    value = graph.value(node, prop)
    return None if value is None else Fraction(str(value))


def _order(graph: rdflib.Graph, node) -> int:
    return int(str(graph.value(node, M.order) or 0))


def _local(node) -> str:
    return str(node).rsplit("/", 1)[-1]


def candidate_categories(graph: rdflib.Graph) -> list[CandidateCategory]:
    found = [CandidateCategory(category=str(category), term=compact(str(cls)), order=_order(graph, cls))
             for cls, category in graph.subject_objects(M.candidateCategory)]
    return sorted(found, key=lambda c: (c.order, c.category))


def _kind(rule: EvidenceRule) -> str:
    if rule.criterion:
        return "criterion"
    if rule.conditions:
        return "condition"
    if rule.gene_of:
        return "gene"
    if rule.finding:
        return "finding"
    if rule.alert:
        return "alert"
    if rule.attribute:
        return "age"
    if rule.analyte and rule.direction:
        return "signature"
    if rule.analyte:
        return "level"
    raise ValueError(f"evidence rule {rule.id} has no condition")


def evidence_rules(graph: rdflib.Graph) -> list[EvidenceRule]:
    rules = []
    for node in graph.subjects(RDF.type, M.EvidenceRule):
        effects = []
        for effect in graph.objects(node, M.effect):
            candidate, weight = _term(graph, effect, M.candidate), _fraction(graph, effect, M.weight)
            if candidate is None or weight is None:
                raise ValueError(f"evidence rule {_local(node)}: an effect needs mkg:candidate and mkg:weight")
            effects.append(Effect(candidate=candidate, weight=weight))
        rule = EvidenceRule(
            id=_local(node), label=_text(graph, node, RDFS.label), kind="",
            effects=tuple(sorted(effects, key=lambda e: e.candidate)), sources=_texts(graph, node, OIO.source),
            comment=_text(graph, node, RDFS.comment), order=_order(graph, node),
            criterion=_text(graph, node, M.whenCriterion) or None, status=_text(graph, node, M.whenStatus) or None,
            conditions=_terms(graph, node, M.whenCondition), finding=_term(graph, node, M.whenFinding),
            absent=bool(graph.value(node, M.whenAbsent)), gene_of=_term(graph, node, M.whenGeneOf),
            analyte=_term(graph, node, M.analyte), direction=_text(graph, node, M.direction) or None,
            via=_term(graph, node, M.via), one_sided=bool(graph.value(node, M.oneSided)), comparator=_text(graph, node, M.comparator) or None,
            threshold=_fraction(graph, node, M.threshold), unit=_text(graph, node, M.unit) or None,
            attribute=_text(graph, node, M.attribute) or None, alert=_text(graph, node, M.whenAlert) or None,
            max_age_years=_fraction(graph, node, M.maxAgeYears))
        rules.append(_with_kind(rule))
    return sorted(rules, key=lambda r: (r.order, r.id))


def _with_kind(rule: EvidenceRule) -> EvidenceRule:
    return replace(rule, kind=_kind(rule))


def indications(graph: rdflib.Graph) -> list[Indication]:
    found = []
    for therapy, node in graph.subject_objects(M.indication):
        candidate = _term(graph, node, M.candidate)
        if candidate is None:
            raise ValueError(f"an indication of {compact(str(therapy))} has no mkg:candidate")
        found.append(Indication(therapy=compact(str(therapy)), candidate=candidate,
                                sources=_texts(graph, node, OIO.source), comment=_text(graph, node, RDFS.comment)))
    return sorted(found, key=lambda i: (i.candidate, i.therapy))


def alert_rules(graph: rdflib.Graph) -> list[AlertRule]:
    rules = []
    for node in graph.subjects(RDF.type, M.AlertRule):
        parts = []
        for part in graph.objects(node, M.trendPart):
            analyte, change = _term(graph, part, M.analyte), _fraction(graph, part, M.relativeChange)
            direction = _text(graph, part, M.direction)
            if analyte is None or change is None or direction not in ("rising", "falling"):
                raise ValueError(f"alert {_local(node)}: a trend part needs mkg:analyte, mkg:direction rising|falling "
                                 "and mkg:relativeChange")
            parts.append(TrendPart(analyte=analyte, direction=direction, relative_change=change))
        rules.append(AlertRule(
            code=_text(graph, node, M.alertCode), label=_text(graph, node, RDFS.label),
            kind=_text(graph, node, M.alertKind), severity=_text(graph, node, M.severity) or "warning",
            definition=_text(graph, node, DEFINITION), sources=_texts(graph, node, OIO.source),
            setting_note=_text(graph, node, M.settingNote), order=_order(graph, node),
            high_analytes=_terms(graph, node, M.highAnalyte), not_high_analytes=_terms(graph, node, M.notHighAnalyte),
            parts=tuple(sorted(parts, key=lambda p: p.analyte)), lookback_hours=_fraction(graph, node, M.lookbackHours),
            earlier_high=_terms(graph, node, M.earlierHigh), any_alerts=_texts(graph, node, M.anyAlert),
            all_alerts=_texts(graph, node, M.allAlert)))
    return sorted(rules, key=lambda r: (r.order, r.code))
