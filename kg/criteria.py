"""Evaluate criteria sets held in the ontology, three-valued and exactly.

Items are ``met``, ``not_met`` or ``missing``; a set is ``met``, ``not_met``,
``indeterminate`` (some completion of the missing items would flip it) or
``not_applicable`` (its population entry condition is false).  Every item is
read once in a monotone formula, so Kleene's three-valued logic gives exactly
the completion semantics of DESIGN.md section 4.  Points, linear formulas and
ratios are evaluated over intervals: each input is the set of values it allows
(a point, a censored half-line, or everything when missing), so ``score_range``
is exact and a verdict is given only when every completion agrees.  Values are
converted to the item's published unit and compared exactly (semantics 1).

>>> import kg
>>> report = kg.Engine().explain({"id": "x", "observations": [
...     {"code": "temperature", "value": 39.4, "unit": "Cel"},
...     {"code": "ferritin", "value": 6000, "unit": "ng/mL"}]})
>>> [(i["id"], i["points"]) for i in report.criterion("hscore")["items"] if i["id"] in ("hscore.temperature", "hscore.ferritin")]
[('hscore.temperature', 33), ('hscore.ferritin', 35)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .findings import lab_interval, number
from .knowledge import Band, CriteriaSet, CriterionItem, KnowledgeBase, ThresholdRule
from .patient import Observation, Patient
from .units import UnitError

__all__ = ["ItemResult", "SetResult", "Context", "Interval", "evaluate_set", "compare_interval"]

MET, NOT_MET, MISSING = "met", "not_met", "missing"
COUNTING = ("all", "any", "at-least")
FORMULAS = ("sum", "linear", "ratio")

# (low, high, low_inclusive, high_inclusive); None is an unbounded end.
Interval = tuple[Fraction | None, Fraction | None, bool, bool]
EVERYTHING_NON_NEGATIVE: Interval = (Fraction(0), None, True, False)
INFINITY: Any = float("inf")  # only as the low end of x/0, which compares above every threshold


def _point(value: Fraction) -> Interval:
    return (value, value, True, True)


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
    points: tuple[Fraction, Fraction] | None = None  # (certain, highest possible)
    term: Interval | None = None  # a formula operand's contribution, or a formula's total

    def to_dict(self, kb: KnowledgeBase) -> dict[str, Any]:
        item = self.item
        out: dict[str, Any] = {"id": item.id, "label": item.label, "status": self.status,
                               "value": number(self.value), "unit": item.unit, "points": None}
        if item.comparator and item.combination is None:
            out["rule"] = f"{item.comparator} {number(item.threshold)} {item.unit}"
        if item.bands:
            out["bands"] = [f"{b.comparator} {number(b.threshold)}{' ' + item.unit if item.unit else ''}: {number(b.points)}"
                            for b in item.bands]
        if self.points is not None:
            out["points"] = number(self.points[0])
            out["points_range"] = [number(self.points[0]), number(self.points[1])]
        if item.coefficient is not None:
            out["coefficient"] = number(item.coefficient)
        if self.term is not None and item.combination is None:
            out["term_range"] = [number(self.term[0]), number(self.term[1])]
        if self.censor:
            out["censored"] = self.censor
        if item.combination:
            out["combination"] = item.combination if item.combination != "at-least" else f"at least {item.min_count}"
            out["parts"] = list(item.parts) or [p for p in (item.numerator, item.denominator) if p]
            if item.combination in COUNTING + ("count-points",):
                out["met_count"] = self.met_count
        if item.finding:
            out["finding"] = kb.terms[item.finding].notation
            if item.comparator is None or self.observation is None or self.observation.kind != "finding":
                out["value"] = self.observation.present if self.observation is not None else None
            else:
                out["value"] = number(self.observation.value)
        if item.attribute:
            out["attribute"] = item.attribute
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
    score: Fraction | None
    score_range: tuple[Fraction | None, Fraction | None] | None
    cutoff: Fraction | None
    would_decide: tuple[str, ...]
    exclusive_range: tuple[bool, bool] = (False, False)  # an end is a bound the score never reaches

    def to_dict(self, kb: KnowledgeBase) -> dict[str, Any]:
        c = self.criteria
        return {
            "id": c.id, "label": c.label, "short_label": c.short_label, "alert_tier": c.alert_tier,
            "status": self.status, "score": number(self.score),
            "score_range": [number(self.score_range[0]), number(self.score_range[1])] if self.score_range else None,
            "cutoff": number(self.cutoff),
            **({"score_range_excludes": list(self.exclusive_range)} if any(self.exclusive_range) else {}),
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
    converted: dict[tuple[str, str], tuple] = field(default_factory=dict)  # (analyte, unit) -> _lab()

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


def compare_interval(interval: Interval, comparator: str, threshold: Fraction) -> bool | None:
    """True if every value of the interval passes, False if none does, None if it depends.

    >>> F = Fraction
    >>> compare_interval((F(684), F(684), True, True), ">", F(684)), compare_interval((F(684), None, False, False), ">", F(684))
    (False, True)
    >>> compare_interval((None, F(-2.1), False, False), ">=", F(-2.1))
    False
    """
    low, high, low_inc, high_inc = interval
    above = low is not None and (low > threshold or (low == threshold and not low_inc))  # every value > t
    below = high is not None and (high < threshold or (high == threshold and not high_inc))  # every value < t
    at_most = high is not None and high <= threshold
    at_least = low is not None and low >= threshold
    if comparator == ">":
        return True if above else False if at_most else None
    if comparator == ">=":
        return True if at_least else False if below else None
    if comparator == "<":
        return True if below else False if at_least else None
    if comparator == "<=":
        return True if at_most else False if above else None
    raise ValueError(f"unknown comparator {comparator!r}")


def _verdict(outcomes: set[bool | None]) -> str:
    if outcomes == {True}:
        return MET
    if outcomes == {False}:
        return NOT_MET
    return MISSING


def _lab(ctx: Context, analyte: str, unit: str) -> tuple[Interval | None, Observation | None, str | None]:
    """The observation in force for ``analyte`` as an interval in ``unit`` (None when unusable)."""
    key = (analyte, unit)
    if key in ctx.converted:  # each value is converted once per unit, however many sets read it
        return ctx.converted[key]
    obs = ctx.labs.get(analyte)
    if obs is None:
        result: tuple = (None, None, None)
    else:
        try:
            result = (lab_interval(obs, ctx.kb.lab_tests[analyte], unit), obs, None)
        except UnitError:
            result = (None, obs, f"{obs.unit} cannot be compared with {unit}")
    ctx.converted[key] = result
    return result


def _shown(interval: Interval, obs: Observation) -> Fraction | None:
    return interval[0] if obs.comparator in (None, ">", ">=") else interval[1]


def _threshold_item(item: CriterionItem, ctx: Context) -> ItemResult:
    thresholds = {item.threshold}
    if item.age_threshold is not None:
        max_days, infant_threshold = item.age_threshold
        age = ctx.patient.age_years
        if age is None:
            thresholds.add(infant_threshold)  # undecided where the two thresholds disagree
        elif age * Fraction("365.25") < max_days:
            thresholds = {infant_threshold}
    interval, obs, note = _lab(ctx, item.analyte, item.unit)  # type: ignore[arg-type]
    if interval is None:
        return ItemResult(item, MISSING, observation=obs, note=note)
    status = _verdict({compare_interval(interval, item.comparator, t) for t in thresholds})  # type: ignore[arg-type]
    return ItemResult(item, status, value=_shown(interval, obs), censor=obs.comparator, observation=obs)  # type: ignore[arg-type]


def _rule_status(rule: ThresholdRule, ctx: Context) -> str:
    interval, _, _ = _lab(ctx, rule.analyte, rule.unit)
    return MISSING if interval is None else _verdict({compare_interval(interval, rule.comparator, rule.threshold)})


def finding_status(term_id: str, sites: tuple[str, ...], ctx: Context,
                   measured: ThresholdRule | None = None) -> tuple[str, Observation | None]:
    """Status of a clinical finding, with its measured rule (fever: temperature) and accepted sites.

    Reported OR measured (semantics 16): met if either is positive; not met if
    neither is positive and one is negative.  ``measured`` replaces the sign's
    own rule (Parodi's fever > 38 C, semantics 18).
    """
    observations = ctx.findings.get(term_id, [])
    accepted = [o for o in observations if o.present and (not sites or o.site is None or o.site in sites)]
    if accepted:
        status, witness = MET, accepted[-1]
    elif any(o.present is False for o in observations):
        status, witness = NOT_MET, next(o for o in reversed(observations) if o.present is False)
    else:
        status, witness = MISSING, (observations[-1] if observations else None)
    if measured is None:
        test = ctx.kb.test_with_high_sign(term_id)
        measured = test.high_rule if test is not None else None
    if measured is not None:
        by_value = _rule_status(measured, ctx)
        if MET in (status, by_value):
            return MET, witness if status == MET else ctx.labs.get(measured.analyte)
        if NOT_MET in (status, by_value):
            return NOT_MET, witness if status == NOT_MET else ctx.labs.get(measured.analyte)
    return status, witness


def _finding_item(item: CriterionItem, ctx: Context) -> ItemResult:
    status, witness = finding_status(item.finding, item.sites, ctx, item.measured_rule)  # type: ignore[arg-type]
    note = None
    if status == MISSING and any(o.present for o in ctx.findings.get(item.finding, [])):  # type: ignore[arg-type]
        note = "present only at a site this item does not accept"
    if item.comparator is not None and status == MET:  # a size rule, e.g. >= 3 cm below the costal arch
        sized = [o for o in ctx.findings.get(item.finding, []) if o.present and o.value is not None]  # type: ignore[arg-type]
        if not sized:
            status, note = MISSING, f"present, but the size ({item.comparator} {number(item.threshold)} {item.unit}) is not given"
        else:
            witness = sized[-1]
            passes = compare_interval(_point(witness.value), item.comparator, item.threshold)  # type: ignore[arg-type]
            status = MET if passes else NOT_MET
    points = None
    if item.points is not None:
        points = {MET: (item.points, item.points), NOT_MET: (Fraction(0), Fraction(0))}.get(
            status, (Fraction(0), item.points))
    term = None
    if item.coefficient is not None:  # a 1/0 operand of a linear formula
        c = item.coefficient
        term = {MET: _point(c), NOT_MET: _point(Fraction(0))}.get(status, (min(c, 0), max(c, 0), True, True))
    return ItemResult(item, status, observation=witness, note=note, points=points, term=term)


def _band_points(bands: tuple[Band, ...], interval: Interval) -> tuple[Fraction, Fraction]:
    """(certain, highest possible) points of a value in ``interval``: the best band that holds."""
    low = high = Fraction(0)
    for band in bands:
        holds = compare_interval(interval, band.comparator, band.threshold)
        if holds is True:
            low = max(low, band.points)
        if holds is not False:
            high = max(high, band.points)
    return low, high


def _points_status(points: tuple[Fraction, Fraction]) -> str:
    """Semantics 3: a points item is met when it certainly contributes."""
    return MET if points[0] > 0 else NOT_MET if points[1] == 0 else MISSING


def _banded_item(item: CriterionItem, ctx: Context) -> ItemResult:
    obs = note = None
    if item.attribute == "age":
        age = ctx.patient.age_years
        interval: Interval | None = _point(age) if age is not None else None
        value = age
    else:
        interval, obs, note = _lab(ctx, item.analyte, item.unit)  # type: ignore[arg-type]
        value = _shown(interval, obs) if interval is not None and obs is not None else None
    if interval is None:
        interval = EVERYTHING_NON_NEGATIVE if item.attribute else (None, None, False, False)
        if item.absent_finding and finding_status(item.absent_finding, (), ctx)[0] == NOT_MET:
            points = (Fraction(0), Fraction(0))  # e.g. no fever reported: below every band
            return ItemResult(item, NOT_MET, points=points, note="no value; scored 0 because "
                              f"{ctx.kb.terms[item.absent_finding].notation} is reported absent")
    points = _band_points(item.bands, interval)
    return ItemResult(item, _points_status(points), value=value, censor=obs.comparator if obs else None,
                      observation=obs, note=note, points=points)


def _operand(item: CriterionItem, ctx: Context) -> ItemResult:
    """A laboratory operand of a formula: present is met, absent is missing (semantics 7)."""
    interval, obs, note = _lab(ctx, item.analyte, item.unit)  # type: ignore[arg-type]
    if interval is None:
        value_range: Interval = EVERYTHING_NON_NEGATIVE
        status, value = MISSING, None
    else:
        value_range, status, value = interval, MET, _shown(interval, obs)  # type: ignore[arg-type]
    term = _scale(value_range, item.coefficient) if item.coefficient is not None else value_range
    return ItemResult(item, status, value=value, censor=obs.comparator if obs else None, observation=obs,
                      note=note, term=term)


def _scale(interval: Interval, c: Fraction) -> Interval:
    low, high, low_inc, high_inc = interval
    if c >= 0:
        return (None if low is None else low * c, None if high is None else high * c, low_inc, high_inc)
    return (None if high is None else high * c, None if low is None else low * c, high_inc, low_inc)


def _add(a: Interval, b: Interval) -> Interval:
    low = None if a[0] is None or b[0] is None else a[0] + b[0]
    high = None if a[1] is None or b[1] is None else a[1] + b[1]
    return (low, high, a[2] and b[2], a[3] and b[3])


def _divide(num: Interval, den: Interval) -> Interval | None:
    """num / den for non-negative intervals; None when 0/0 is possible and nothing else is known."""
    n_low, n_high, n_low_inc, n_high_inc = num
    d_low, d_high, d_low_inc, d_high_inc = den
    if d_high == 0:  # the denominator is exactly 0: x/0 is above every threshold; 0/0 is undefined
        return (INFINITY, None, True, False) if n_low and n_low > 0 else None
    low = Fraction(0) if d_high is None else n_low / d_high  # type: ignore[operator]
    low_inc = d_high is not None and n_low_inc and d_high_inc
    if d_low == 0 or n_high is None:  # a denominator near 0 leaves the ratio unbounded above
        high, high_inc = None, False
    else:
        high, high_inc = n_high / d_low, n_high_inc and d_low_inc  # type: ignore[operator]
    return (low, high, low_inc, high_inc)


def _evaluate(item_id: str, c: CriteriaSet, ctx: Context, out: dict[str, ItemResult]) -> ItemResult:
    item = c.items[item_id]
    kind = item.combination
    if kind in COUNTING or kind == "count-points":
        parts = [_evaluate(p, c, ctx, out) for p in item.parts]
        met = sum(p.status == MET for p in parts)
        missing = sum(p.status == MISSING for p in parts)
        if kind == "count-points":
            points = _band_points(item.bands, (Fraction(met), Fraction(met + missing), True, True))
            result = ItemResult(item, _points_status(points), met_count=met, missing_count=missing, points=points)
        else:
            need = {"all": len(parts), "any": 1}.get(kind, item.min_count or 0)  # type: ignore[arg-type]
            status = MET if met >= need else NOT_MET if met + missing < need else MISSING
            result = ItemResult(item, status, met_count=met, missing_count=missing)
    elif kind in FORMULAS:
        result = _formula(item, c, ctx, out)
    elif item.finding:
        result = _finding_item(item, ctx)
    elif item.bands:
        result = _banded_item(item, ctx)
    elif item.analyte and item.comparator:
        result = _threshold_item(item, ctx)
    elif item.analyte:
        result = _operand(item, ctx)
    else:
        raise ValueError(f"criterion item {item.id} has no parts, analyte, attribute or finding")
    out[item_id] = result
    return result


def _formula(item: CriterionItem, c: CriteriaSet, ctx: Context, out: dict[str, ItemResult]) -> ItemResult:
    total: Interval | None
    note = None
    if item.combination == "ratio":
        num = _evaluate(item.numerator, c, ctx, out)  # type: ignore[arg-type]
        den = _evaluate(item.denominator, c, ctx, out)  # type: ignore[arg-type]
        total = _divide(num.term, den.term)  # type: ignore[arg-type]
        if total is None:
            note = "0/0: the ratio is undefined"
    else:
        parts = [_evaluate(p, c, ctx, out) for p in item.parts]
        total = _point(Fraction(0))
        for part in parts:
            term = (part.points[0], part.points[1], True, True) if item.combination == "sum" else part.term
            total = _add(total, term)  # type: ignore[arg-type]
    status = MISSING if total is None else _verdict({compare_interval(total, item.comparator, item.threshold)})  # type: ignore[arg-type]
    return ItemResult(item, status, term=total, note=note)


def _applicable(c: CriteriaSet, ctx: Context) -> bool:
    if not c.population:
        return True
    return any(ctx.kb.is_a(condition.term, population)
               for condition in ctx.patient.conditions for population in c.population)


def _score(c: CriteriaSet, results: dict[str, ItemResult]):
    """(score, score_range, cutoff, exclusive ends) of the set's scored item(s) -- semantics 4-6."""
    scored = [results[i] for i in c.scored_items if i in results]
    if not scored:
        return None, None, None, (False, False)
    if len(scored) > 1 or scored[0].item.combination in COUNTING:
        met = sum(r.met_count or 0 for r in scored)
        high = met + sum(r.missing_count or 0 for r in scored)
        cutoff = None
        if len(scored) == 1:
            item = scored[0].item
            cutoff = {"all": len(item.parts), "any": 1}.get(item.combination, item.min_count)  # type: ignore[arg-type]
        return Fraction(met), (Fraction(met), Fraction(high)), None if cutoff is None else Fraction(cutoff), (False, False)
    result = scored[0]
    if result.term is None:  # an undefined ratio
        return None, (None, None), result.item.threshold, (False, False)
    low, high, low_inc, high_inc = result.term
    if low == INFINITY:  # x/0 (semantics 33): unbounded, no score
        return None, (None, None), result.item.threshold, (False, False)
    if result.item.combination == "sum":
        score = low
    else:  # a formula has a value only when every operand is an exact value (semantics 14)
        score = low if low is not None and low == high and low_inc and high_inc else None
    ends_excluded = (low is not None and not low_inc, high is not None and not high_inc)
    return score, (low, high), result.item.threshold, ends_excluded


def evaluate_set(c: CriteriaSet, ctx: Context) -> SetResult:
    results: dict[str, ItemResult] = {}
    root = _evaluate(c.rule, c, ctx, results)
    score, score_range, cutoff, exclusive = _score(c, results)
    if not _applicable(c, ctx):
        status = "not_applicable"
    else:
        status = {MET: "met", NOT_MET: "not_met", MISSING: "indeterminate"}[root.status]
    ordered = tuple(sorted((r for r in results.values() if r.item.id != c.rule), key=lambda r: r.item.order))
    decide: list[str] = []
    if status == "indeterminate":  # the inputs of the missing leaf items, in display order
        for r in ordered:
            if r.status == MISSING and not r.item.combination:
                name = r.item.attribute or ctx.kb.terms[r.item.input_name].notation  # type: ignore[index]
                if name and name not in decide:
                    decide.append(name)
    return SetResult(c, status, ordered, score, score_range, cutoff, tuple(decide), exclusive)
