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

from datetime import datetime
from pathlib import Path
from typing import Any

from .causal import CausalGraph, Target
from .criteria import Context, evaluate_set
from .errors import InputError
from .findings import Finding, evaluation_time, finding_to_dict, interpret, select_at
from .knowledge import KnowledgeBase, load_knowledge
from .patient import Patient, load_patient_file, parse_time, read_patient
from .report import SCHEMA, Report

__all__ = ["Engine"]


class Engine:
    """Loads the ontology once; explains any number of patients."""

    def __init__(self, *, ontology: str | Path | None = None) -> None:
        self.kb: KnowledgeBase = load_knowledge(Path(ontology) if ontology else None)
        self.graph = CausalGraph(self.kb)

    def read(self, source: str | Path | dict[str, Any]) -> Patient:
        if isinstance(source, dict):
            return read_patient(source, self.kb)
        return load_patient_file(source, self.kb)

    def explain(self, patient: str | Path | dict[str, Any] | Patient, *, at: datetime | str | None = None,
                paths_per_finding: int = 5) -> Report:
        """Evaluate criteria and explain every abnormal finding at time ``at``."""
        if not isinstance(patient, Patient):
            patient = self.read(patient)
        if isinstance(at, str):
            try:
                at = parse_time(at)
            except ValueError as error:
                raise InputError(f"--at: {error}") from None
        when = evaluation_time(patient, at)
        selected = select_at(patient, when)
        findings = [interpret(o, patient, self.kb) for o in selected]
        ctx = Context.build(patient, self.kb, selected)
        criteria = [evaluate_set(c, ctx) for c in self.kb.criteria]
        targets = [t for f in findings if (t := self._target(f)) is not None]
        context = self._context(patient, selected)
        explanations, unexplained = [], []
        for target in targets:
            paths = self.graph.explain(target, context=context, others=targets, limit=paths_per_finding)
            if paths:
                explanations.append({"finding": target.code, "direction": target.direction, "node": target.node,
                                     "node_label": self.kb.terms[target.node].label,
                                     "paths": [p.to_dict(self.kb) for p in paths]})
            else:
                unexplained.append(target.code)
        data = {
            "schema": SCHEMA,
            "patient": patient.id,
            "at": when.isoformat().replace("+00:00", "Z") if when else None,
            "age_years": float(patient.age_years) if patient.age_years is not None else None,
            "conditions": [{"code": c.code, "term": c.term, "status": c.status} for c in patient.conditions],
            "observations": {"given": patient.given, "used": len(patient.observations),
                             "rejected": [r.to_dict() for r in patient.rejected], "in_force": len(selected)},
            "findings": [finding_to_dict(f, self.kb) for f in findings],
            "criteria": [r.to_dict(self.kb) for r in criteria],
            # Ranked candidate syndromes are the subject of issue 4; until then the
            # contract key is present and empty, and "candidates_status" says why.
            "candidates": [],
            "candidates_status": "not ranked yet: candidate ranking is not implemented in this version",
            "explanations": explanations,
            "unexplained": unexplained,
            "alerts": [],
            "notes": list(patient.notes),
            "ontology": {"digest": self.kb.digest},
        }
        return Report(data)

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
