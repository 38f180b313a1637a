"""Checks of the ranking knowledge (part of ``mas-kg check``): candidate
categories, evidence rules, therapy indications and alert rules.

Beyond well-formedness, every signature rule must be backed by the signed
causal graph: a path from its mechanism (``mkg:via``) to the lab's node whose
composed sign is the predicted direction.
"""

from __future__ import annotations

import rdflib

from .causal import edge_graph, signed_path
from rdflib import RDF

from .compile import M, _edges, _lab_tests, _terms, alert_rules, candidate_categories, evidence_rules, indications
from .units import UnitError, quantity_kind

__all__ = ["ranking_problems", "CATEGORIES"]

CATEGORIES = ("mas", "primary_hlh", "infection_hlh", "malignancy_hlh", "disease_flare", "sepsis_dic")  # DESIGN.md §4
_STATUSES = {"met", "not_met", "indeterminate", "not_applicable"}
_COMPARATORS = {"<", "<=", ">", ">="}
_ALERT_KINDS = {"discordance", "trend", "transition"}


def ranking_problems(graph: rdflib.Graph) -> list[str]:
    try:
        categories = candidate_categories(graph)
        rules = evidence_rules(graph)
        uses = indications(graph)
        alerts = alert_rules(graph)
        terms = _terms(graph)
        tests = _lab_tests(graph, terms)
        causal = edge_graph(_edges(graph))
    except (ValueError, TypeError, ArithmeticError) as error:
        return [f"ranking knowledge cannot be compiled: {error}"]
    criteria = {str(i) for s in graph.subjects(RDF.type, M.CriteriaSet) for i in graph.objects(s, M.criterionId)}
    problems = []
    names = sorted(c.category for c in categories)
    if names != sorted(CATEGORIES):
        problems.append(f"candidate categories are {names}, not the six of DESIGN.md section 4")
    candidate_terms = {c.term for c in categories}
    alert_codes = {a.code for a in alerts}
    for rule in rules:
        where = f"evidence rule {rule.id}"
        problems += [f"{where}: {p}" for p in _rule_problems(rule, terms, tests, causal, criteria, alert_codes)]
        if not rule.effects:
            problems.append(f"{where}: no mkg:effect")
        for effect in rule.effects:
            if effect.candidate not in candidate_terms:
                problems.append(f"{where}: effect on {effect.candidate}, which is not a candidate category")
        if not rule.label or not rule.sources:
            problems.append(f"{where}: needs a label and a source")
    for use in uses:
        if terms.get(use.therapy) is None or terms[use.therapy].kind != "Therapy":
            problems.append(f"indication of {use.therapy}: not a therapy")
        if use.candidate not in candidate_terms:
            problems.append(f"indication of {use.therapy}: {use.candidate} is not a candidate category")
        if not use.sources:
            problems.append(f"indication of {use.therapy} for {use.candidate}: no source")
    for alert in alerts:
        problems += [f"alert {alert.code or '?'}: {p}" for p in _alert_problems(alert, tests, alert_codes)]
    if len(alert_codes) != len(alerts):
        problems.append("alert codes are not unique")
    return problems


def _rule_problems(rule, terms, tests, causal, criteria, alert_codes) -> list[str]:
    problems = []
    if rule.criterion is not None:
        if rule.criterion not in criteria:
            problems.append(f"unknown criteria set {rule.criterion!r}")
        if rule.status not in _STATUSES:
            problems.append(f"status {rule.status!r} is not one of {sorted(_STATUSES)}")
    for condition in rule.conditions:
        if terms.get(condition) is None or terms[condition].kind not in {"Disease", "Trigger"}:
            problems.append(f"condition {condition} is not a disease or trigger")
    if rule.finding is not None and (terms.get(rule.finding) is None or terms[rule.finding].kind != "ClinicalSign"):
        problems.append(f"finding {rule.finding} is not a clinical sign")
    if rule.gene_of is not None and rule.gene_of not in terms:
        problems.append(f"gene rule on unknown class {rule.gene_of}")
    if rule.alert is not None and rule.alert not in alert_codes:
        problems.append(f"unknown alert {rule.alert!r}")
    if rule.kind == "age" and (rule.attribute != "age" or rule.unit != "a" or rule.comparator not in _COMPARATORS
                               or rule.threshold is None):
        problems.append("an age rule needs mkg:attribute 'age', a comparator, a threshold and unit 'a'")
    if rule.analyte is not None:
        test = tests.get(rule.analyte)
        if test is None:
            return problems + [f"analyte {rule.analyte} is not a lab test"]
        if rule.kind == "signature":
            problems += _signature_problems(rule, test, causal)
        elif rule.comparator not in _COMPARATORS or rule.threshold is None or not rule.unit:
            problems.append("a level rule needs a comparator, a threshold and a unit")
        else:
            try:
                if quantity_kind(rule.unit, analyte_kind=test.quantity_kind) != test.quantity_kind:
                    problems.append(f"unit {rule.unit} cannot be compared with {test.notation}")
            except UnitError as error:
                problems.append(str(error))
    return problems


def _signature_problems(rule, test, causal) -> list[str]:
    if rule.direction not in {"high", "low"}:
        return [f"direction {rule.direction!r} is not high or low"]
    if rule.via is None:
        return ["a signature rule needs mkg:via (the mechanism that moves the lab)"]
    sign = 1 if rule.direction == "high" else -1
    if signed_path(causal, rule.via, test.measures, sign) is None:
        return [f"no {rule.direction}-signed path in the causal graph from {rule.via} to {test.measures}"]
    return []


def _alert_problems(alert, tests, alert_codes) -> list[str]:
    problems = []
    if not alert.code or not alert.label or not alert.definition or not alert.sources:
        problems.append("needs a code, a label, a definition and a source")
    if alert.kind not in _ALERT_KINDS:
        problems.append(f"kind {alert.kind!r} is not one of {sorted(_ALERT_KINDS)}")
    if alert.severity not in {"warning", "info"}:
        problems.append(f"severity {alert.severity!r} is not warning or info")
    for analyte in (*alert.high_analytes, *alert.not_high_analytes, *alert.earlier_high, *(p.analyte for p in alert.parts)):
        if analyte not in tests:
            problems.append(f"{analyte} is not a lab test")
    if alert.kind == "discordance" and not (alert.high_analytes and alert.not_high_analytes):
        problems.append("a discordance needs mkg:highAnalyte and mkg:notHighAnalyte")
    if alert.kind == "trend":
        if not alert.parts:
            problems.append("a trend needs at least one mkg:trendPart")
        if any(not 0 < p.relative_change for p in alert.parts):
            problems.append("a relative change must be positive")
    if alert.kind in {"trend", "transition"} and (alert.lookback_hours is None or alert.lookback_hours <= 0):
        problems.append("needs a positive mkg:lookbackHours")
    for code in (*alert.any_alerts, *alert.all_alerts):
        if code not in alert_codes or code == alert.code:
            problems.append(f"refers to unknown alert {code!r}")
    if alert.kind == "transition" and alert.setting_note == "":
        problems.append("a transition needs its mkg:settingNote")
    return problems
