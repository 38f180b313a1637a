"""The engine: patient in, explained report out.

>>> import kg
>>> engine = kg.Engine()
>>> report = engine.explain({"id": "demo", "age_years": 7, "conditions": [{"code": "sJIA"}],
...     "observations": [{"code": "fever", "present": True},
...                      {"code": "ferritin", "value": 12000, "unit": "ng/mL"},
...                      {"code": "platelets", "value": 95, "unit": "10*9/L"},
...                      {"code": "fibrinogen", "value": 1.2, "unit": "g/L"}]})
>>> report.criterion("mas2016")["status"], report.criterion("mas2016")["score"]
('met', 2)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from .assessment import hlh_origin, next_tests
from .candidates import METHOD as CANDIDATES_METHOD
from .candidates import rank_candidates
from .causal import CausalGraph, Target
from .criteria import Context, SetResult, evaluate_set
from .errors import InputError
from .findings import Finding, evaluation_time, finding_to_dict, history, interpret, select_at
from .knowledge import KnowledgeBase, load_knowledge
from .inputs import read_patient_file
from .patient import Patient, parse_time, read_patient
from .probability import post_test_report, table_probability
from .report import SCHEMA, Report
from .therapies import therapy_options
from .trends import evaluate_alerts, lab_series, series_to_dict

__all__ = ["Engine", "DEFAULT_WINDOW"]

DEFAULT_WINDOW = timedelta(hours=72)


class Engine:
    """Loads the ontology once; explains any number of patients."""

    def __init__(self, *, ontology: str | Path | None = None) -> None:
        self.kb: KnowledgeBase = load_knowledge(Path(ontology) if ontology else None)
        self.graph = CausalGraph(self.kb)

    def read(self, source: str | Path | dict[str, Any]) -> Patient:
        """One patient: a JSON-contract dict, a FHIR Bundle dict, or a file of any format (kg.inputs)
        holding exactly one patient."""
        if isinstance(source, dict) and source.get("resourceType") == "Bundle":  # FHIR R4: kg.fhir
            from .fhir import read_bundle

            patients = [p.patient for p in read_bundle(source, kb=self.kb)]
            where = "this Bundle"
        elif isinstance(source, dict):
            return read_patient(source, self.kb)
        else:
            patients = [p for p, _ in read_patient_file(source, self.kb).patients]
            where = str(source)
        if len(patients) != 1:
            raise InputError(f"{where} holds {len(patients)} patients: read them with kg.inputs.read_patient_file")
        return patients[0]

    def evaluate_criteria(self, patient: Patient, *, at: datetime | None = None,
                          window: timedelta | None = DEFAULT_WINDOW) -> list[SetResult]:
        """Every criteria set at ``at``, as :meth:`explain` evaluates them (without the rest of the report)."""
        return self._criteria(patient, select_at(patient, evaluation_time(patient, at), window=window))

    def _criteria(self, patient: Patient, selected: list) -> list[SetResult]:
        ctx = Context.build(patient, self.kb, selected)
        return [evaluate_set(c, ctx) for c in self.kb.criteria]

    def explain(self, patient: str | Path | dict[str, Any] | Patient, *, at: datetime | str | None = None,
                window: timedelta | None = DEFAULT_WINDOW, pretest: float | dict[str, float] | None = None,
                paths_per_finding: int = 5) -> Report:
        """Evaluate criteria and explain every abnormal finding at time ``at``.

        ``window``: how far back a timed value still counts (default 72 h; None
        for no limit).  ``pretest``: a pre-test probability for every criteria
        set, or ``{criterion id: probability}``; by default the ontology's
        documented default for the patient's context.
        """
        if not isinstance(patient, Patient):
            patient = self.read(patient)
        if isinstance(at, str):
            try:
                at = parse_time(at)
            except ValueError as error:
                raise InputError(f"--at: {error}") from None
        if window is not None and window < timedelta(0):
            raise InputError("the look-back window must not be negative")
        given = _pretests(pretest, self.kb)
        when = evaluation_time(patient, at)
        selected = select_at(patient, when, window=window)
        in_force = {o.index for o in selected}
        out_of_window = [o for o in select_at(patient, when) if o.index not in in_force]
        findings = [interpret(o, patient, self.kb) for o in selected]
        results = self._criteria(patient, selected)
        criteria = []
        for result in results:
            entry = result.to_dict(self.kb)
            table = table_probability(result.criteria, result)
            if table is not None:
                entry.update(table)
            entry["post_test"] = post_test_report(result.criteria, result, patient, self.kb, given)
            criteria.append(entry)
        finding_dicts = []
        for finding in findings:
            entry = finding_to_dict(finding, self.kb)
            if finding.kind == "lab":
                entry["history"] = history(patient, finding.term, when, self.kb)
            finding_dicts.append(entry)
        targets = [t for f in findings if (t := self._target(f)) is not None]
        context = self._context(patient, selected)
        explained = self.graph.explain_all(targets, context=context, limit=paths_per_finding)
        explanations, unexplained = [], []
        for target in targets:
            paths = explained.get(target.code, [])
            if paths:
                explanations.append({"finding": target.code, "direction": target.direction, "node": target.node,
                                     "node_label": self.kb.terms[target.node].label,
                                     "paths": [p.to_dict(self.kb) for p in paths]})
            else:
                unexplained.append(target.code)
        series = lab_series(patient, when, self.kb)
        alerts = evaluate_alerts(self.kb.alerts, series=series, findings=findings, patient=patient, kb=self.kb,
                                 in_force=in_force)
        self._explain_discordances(alerts, targets, context)
        candidates = rank_candidates(self.kb, self.graph, patient=patient, findings=findings, criteria=criteria,
                                     alerts=alerts)
        data = {
            "schema": SCHEMA,
            "patient": patient.id,
            "at": when.isoformat().replace("+00:00", "Z") if when else None,
            "age_years": float(patient.age_years) if patient.age_years is not None else None,
            "conditions": [{"code": c.code, "term": c.term, "status": c.status} for c in patient.conditions],
            "observations": {"given": patient.given, "used": len(patient.observations),
                             "rejected": [r.to_dict() for r in patient.rejected], "in_force": len(selected),
                             "window_hours": window.total_seconds() / 3600 if window is not None else None,
                             "out_of_window": [{"index": o.index, "code": o.code,
                                                "time": o.time.isoformat().replace("+00:00", "Z") if o.time else None}
                                               for o in out_of_window],
                             "items": [o.to_dict() for o in patient.observations]},
            "findings": finding_dicts,
            "criteria": criteria,
            "candidates": candidates,
            "candidates_method": CANDIDATES_METHOD,
            "hlh_origin": hlh_origin(self.kb, candidates=candidates, patient=patient, findings=findings,
                                     criteria=criteria),
            "explanations": explanations,
            "unexplained": unexplained,
            "alerts": alerts,
            "trends": [series_to_dict(s) for s in series.values()],
            "therapies": therapy_options(self.kb, self.graph, candidates=candidates, targets=targets, patient=patient),
            "next_tests": next_tests(self.kb, candidates=candidates, criteria=criteria),
            "medications": [{"code": m.code, "therapy": m.term,
                             "start": m.start.isoformat().replace("+00:00", "Z") if m.start else None}
                            for m in patient.medications],
            "notes": list(patient.notes),
            "ontology": {"digest": self.kb.digest},
        }
        return Report(data)

    def explain_alert(self, code: str, value: Any, unit: str, *,
                      patient: str | Path | dict[str, Any] | Patient | None = None,
                      time: datetime | str | None = None, comparator: str | None = None, age_years: Any = None,
                      sex: str | None = None) -> dict[str, Any]:
        """Explain one lab value another tool flagged: a JSON-serialisable dict (see :mod:`kg.explain_alert`).

        ``patient`` makes it specific to that patient (the value is added to
        the patient's observations at ``time``, or as current if no time);
        without one, ``age_years`` and ``sex`` choose the reference range.
        """
        from .explain_alert import explain_alert_with

        return explain_alert_with(self, code, value, unit, patient=patient, time=time, comparator=comparator,
                                  age_years=age_years, sex=sex)

    def _explain_discordances(self, alerts: list[dict[str, Any]], targets: list[Target], context: set[str]) -> None:
        """Why a lab is not high when it would be expected to be: its chains of negative sign.

        The ESR of MAS is the case in point: its reference range starts at 0,
        so it is never flagged low, yet the paradox is that it falls.  The
        alert carries the chains (fibrinogen consumed -> fewer rouleaux ->
        smaller settling radius -> slower settling), chosen with the patient's
        other findings.
        """
        rules = {r.code: r for r in self.kb.alerts}
        for alert in alerts:
            rule = rules[alert["code"]]
            if rule.kind != "discordance":
                continue
            chains = []
            for test_id in rule.not_high_analytes:
                test = self.kb.lab_tests[test_id]
                target = Target(test.notation, test.measures, -1, "not high")
                paths = self.graph.explain(target, context=context, others=targets, limit=3)
                chains += [{"finding": test.notation, **p.to_dict(self.kb)} for p in paths]
            alert["explanation"] = chains

    def _target(self, finding: Finding) -> Target | None:
        if not finding.abnormal:
            return None
        if finding.kind == "lab":
            test = self.kb.lab_tests[finding.term]
            return Target(finding.code, test.measures, 1 if finding.interpretation == "high" else -1,
                          finding.interpretation or "")
        # a clinical sign is its own node; fever is the temperature's high sign
        test = self.kb.test_with_high_sign(finding.term)
        node = test.measures if test is not None else finding.term
        if node not in self.graph.graph:
            return None  # history and test results (a gene, family history) are context, not effects
        return Target(finding.code, node, 1, "present")

    def _context(self, patient: Patient, selected: list) -> set[str]:
        """Root causes the patient is known to have: conditions and genes of a molecular diagnosis."""
        context = {c.term for c in patient.conditions}
        for condition in patient.conditions:  # an EBV infection is also an infection
            term = self.kb.terms[condition.term]
            context.update(p for p in term.parents if p in self.graph.roots)
        for obs in selected:
            if obs.kind == "finding" and obs.present and obs.gene:
                context.update(self.kb.genes_to_diseases.get(f"mkg:{obs.gene}", ()))
        return context


def _pretests(pretest: float | dict[str, float] | None, kb: KnowledgeBase) -> dict[str, Fraction]:
    """Validate --pretest values: a probability strictly between 0 and 1, for a known criteria set."""
    if pretest is None:
        return {}
    pairs = pretest.items() if isinstance(pretest, dict) else [("*", pretest)]
    known = {c.id for c in kb.criteria}
    out = {}
    for key, value in pairs:
        if key != "*" and key not in known:
            raise InputError(f"--pretest: unknown criteria set {key!r}")
        try:
            p = Fraction(str(value))
        except (ValueError, TypeError):
            raise InputError(f"--pretest: {value!r} is not a number") from None
        if not 0 < p < 1:
            raise InputError(f"--pretest: {value} is not a probability strictly between 0 and 1")
        out[key] = p
    return out

