"""Evaluate criteria sets held in the ontology, three-valued and exactly.

Items are ``met``, ``not_met`` or ``missing``; a set is ``met``, ``not_met``,
``indeterminate`` (some completion of the missing items would flip it) or
``not_applicable`` (its population entry condition is false).  Every item is
read once in a monotone formula, so Kleene's three-valued logic gives exactly
the completion semantics of DESIGN.md section 4.  Values are converted to the
item's published unit and compared exactly (semantics 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .findings import lab_interval, number
from .knowledge import CriteriaSet, CriterionItem, KnowledgeBase, ThresholdRule
from .patient import Observation, Patient
from .units import UnitError

__all__ = ["ItemResult", "SetResult", "Context", "evaluate_set", "compare_interval"]

MET, NOT_MET, MISSING = "met", "not_met", "missing"


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: CriterionItem
    status: str
    value: Fraction | None = None
    censor: str | None = None
    observation: Observation | None = None
    met_count: int | None = None
    missing_count: int | None = None
    note: str | None = None

    def to_dict(self, kb: KnowledgeBase) -> dict[str, Any]:
        item = self.item
        out: dict[str, Any] = {"id": item.id, "label": item.label, "status": self.status,
                               "value": number(self.value), "unit": item.unit, "points": None}
        if item.comparator:
            out["rule"] = f"{item.comparator} {number(item.threshold)} {item.unit}"
        if self.censor:
            out["censored"] = self.censor
        if item.combination:
            out["combination"] = item.combination if item.combination != "at-least" else f"at least {item.min_count}"
            out["parts"] = list(item.parts)
            out["met_count"] = self.met_count
        if item.finding:
            out["finding"] = kb.terms[item.finding].notation
            out["value"] = self.observation.present if self.observation is not None else None
        if self.observation is not None:
            out["observation"] = self.observation.index
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class SetResult:
    criteria: CriteriaSet
    status: str
    items: tuple[ItemResult, ...]
    score: int | None
    score_range: tuple[int, int] | None
    cutoff: int | None
    would_decide: tuple[str, ...]

    def to_dict(self, kb: KnowledgeBase) -> dict[str, Any]:
        c = self.criteria
        return {
            "id": c.id, "label": c.label, "status": self.status, "score": self.score,
            "score_range": list(self.score_range) if self.score_range else None, "cutoff": self.cutoff,
            "probability": None,
            "items": [r.to_dict(kb) for r in self.items],
            "would_decide": list(self.would_decide),
            "population": [kb.terms[p].notation or p for p in c.population] or None,
            "sensitivity": number(c.sensitivity), "specificity": number(c.specificity),
            "source": c.sources[0] if c.sources else None, "sources": list(c.sources), "citation": c.citation,
            "definition": c.definition, "decision_note": c.decision_note or None,
        }


@dataclass(frozen=True)
class Context:
    """What criteria read: the patient, the observations in force, the knowledge base."""

    patient: Patient
    kb: KnowledgeBase
    labs: dict[str, Observation]
    findings: dict[str, list[Observation]]

    @classmethod
    def build(cls, patient: Patient, kb: KnowledgeBase, selected: list[Observation]) -> "Context":
        labs: dict[str, Observation] = {}
        findings: dict[str, list[Observation]] = {}
        for obs in selected:
            if obs.kind == "lab":
                labs[obs.term] = obs
            else:
                findings.setdefault(obs.term, []).append(obs)
        return cls(patient=patient, kb=kb, labs=labs, findings=findings)


def compare_interval(interval: tuple[Fraction, Fraction | None, bool, bool], comparator: str,
                     threshold: Fraction) -> bool | None:
    """True if every value of the interval passes, False if none does, None if it depends.

    >>> F = Fraction
    >>> compare_interval((F(684), F(684), True, True), ">", F(684)), compare_interval((F(684), None, False, False), ">", F(684))
    (False, True)
    """
    low, high, low_inc, high_inc = interval
    if comparator == ">":
        if low > threshold or (low == threshold and not low_inc):
            return True
        return False if high is not None and high <= threshold else None
    if comparator == ">=":
        if low >= threshold:
            return True
        return False if high is not None and (high < threshold or (high == threshold and not high_inc)) else None
    if comparator == "<":
        if high is not None and (high < threshold or (high == threshold and not high_inc)):
            return True
        return False if low >= threshold else None
    if comparator == "<=":
        if high is not None and high <= threshold:
            return True
        return False if low > threshold or (low == threshold and not low_inc) else None
    raise ValueError(f"unknown comparator {comparator!r}")


def _verdict(outcomes: set[bool | None]) -> str:
    if outcomes == {True}:
        return MET
    if outcomes == {False}:
        return NOT_MET
    return MISSING


def _threshold_status(obs: Observation | None, analyte: str, comparator: str, thresholds: set[Fraction],
                      unit: str, ctx: Context) -> tuple[str, Fraction | None, str | None]:
    if obs is None:
        return MISSING, None, None
    test = ctx.kb.lab_tests[analyte]
    try:
        interval = lab_interval(obs, test, unit)
    except UnitError:
        return MISSING, None, f"{obs.unit} cannot be compared with {unit}"
    outcomes = {compare_interval(interval, comparator, t) for t in thresholds}
    value = interval[0] if obs.comparator in (None, ">", ">=") else interval[1]
    return _verdict(outcomes), value, None


def _threshold_item(item: CriterionItem, ctx: Context) -> ItemResult:
    thresholds = {item.threshold}  # type: ignore[arg-type]
    if item.age_threshold is not None:
        max_days, infant_threshold = item.age_threshold
        age = ctx.patient.age_years
        if age is None:
            thresholds.add(infant_threshold)  # undecided where the two thresholds disagree
        elif age * Fraction("365.25") < max_days:
            thresholds = {infant_threshold}
    obs = ctx.labs.get(item.analyte)  # type: ignore[arg-type]
    status, value, note = _threshold_status(obs, item.analyte, item.comparator, thresholds, item.unit, ctx)  # type: ignore[arg-type]
    return ItemResult(item, status, value=value, censor=obs.comparator if obs else None, observation=obs, note=note)


def _rule_status(rule: ThresholdRule, ctx: Context) -> str:
    obs = ctx.labs.get(rule.analyte)
    return _threshold_status(obs, rule.analyte, rule.comparator, {rule.threshold}, rule.unit, ctx)[0]


def finding_status(term_id: str, sites: tuple[str, ...], ctx: Context) -> tuple[str, Observation | None]:
    """Status of a clinical finding (with fever's temperature rule and accepted sites)."""
    observations = ctx.findings.get(term_id, [])
    accepted = [o for o in observations if o.present and (not sites or o.site is None or o.site in sites)]
    if accepted:
        status, witness = MET, accepted[-1]
    elif any(o.present is False for o in observations):
        status, witness = NOT_MET, next(o for o in reversed(observations) if o.present is False)
    else:
        status, witness = MISSING, (observations[-1] if observations else None)
    test = ctx.kb.test_with_high_sign(term_id)
    if test is not None and test.high_rule is not None:  # fever: reported OR measured (semantics 16)
        measured = _rule_status(test.high_rule, ctx)
        if MET in (status, measured):
            return MET, witness if status == MET else ctx.labs.get(test.id)
        if NOT_MET in (status, measured):
            return NOT_MET, witness if status == NOT_MET else ctx.labs.get(test.id)
    return status, witness


def _evaluate(item_id: str, c: CriteriaSet, ctx: Context, out: dict[str, ItemResult]) -> ItemResult:
    item = c.items[item_id]
    if item.combination:
        parts = [_evaluate(p, c, ctx, out) for p in item.parts]
        met = sum(p.status == MET for p in parts)
        missing = sum(p.status == MISSING for p in parts)
        need = {"all": len(parts), "any": 1}.get(item.combination, item.min_count or 0)
        status = MET if met >= need else NOT_MET if met + missing < need else MISSING
        result = ItemResult(item, status, met_count=met, missing_count=missing)
    elif item.analyte:
        result = _threshold_item(item, ctx)
    elif item.finding:
        status, witness = finding_status(item.finding, item.sites, ctx)
        note = None
        if status == MISSING and any(o.present for o in ctx.findings.get(item.finding, [])):
            note = "present only at a site this item does not accept"
        result = ItemResult(item, status, observation=witness, note=note)
    else:
        raise ValueError(f"criterion item {item.id} has neither parts, analyte nor finding")
    out[item_id] = result
    return result


def _applicable(c: CriteriaSet, ctx: Context) -> bool:
    if not c.population:
        return True
    return any(ctx.kb.is_a(condition.term, population)
               for condition in ctx.patient.conditions for population in c.population)


def evaluate_set(c: CriteriaSet, ctx: Context) -> SetResult:
    results: dict[str, ItemResult] = {}
    root = _evaluate(c.rule, c, ctx, results)
    scored = results.get(c.scored_item) if c.scored_item else None
    score = scored.met_count if scored else None
    score_range = (scored.met_count, scored.met_count + scored.missing_count) if scored else None  # type: ignore[operator]
    cutoff = c.items[c.scored_item].min_count if c.scored_item else None
    if not _applicable(c, ctx):
        status = "not_applicable"
    else:
        status = {MET: "met", NOT_MET: "not_met", MISSING: "indeterminate"}[root.status]
    ordered = tuple(sorted((r for r in results.values() if r.item.id != c.rule), key=lambda r: r.item.order))
    decide: list[str] = []
    if status == "indeterminate":
        for r in ordered:
            if r.status == MISSING and not r.item.combination:
                name = ctx.kb.terms[r.item.analyte or r.item.finding].notation  # type: ignore[index]
                if name and name not in decide:
                    decide.append(name)
    return SetResult(c, status, ordered, score, score_range, cutoff, tuple(decide))
