"""Interpret observations at a time point: pick each code's value, flag high/low.

The evaluation time ``at`` defaults to the latest observation time; each code
uses its latest observation at or before ``at`` (untimed observations apply at
every time point; ties go to the later one in the file) -- semantics 8 -- and
only values within a look-back window before ``at`` (default 72 hours) are in
force; older ones are kept in each finding's history, for trends.
High/low is judged against the ontology's reference range for the patient's age
and sex; when age or sex is unknown the union of the candidate ranges is used,
so a result is flagged only if it is abnormal for every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from .knowledge import KnowledgeBase, LabTest, ReferenceRange
from .patient import Observation, Patient
from .units import UnitError, convert

LAB_RANGE = "the reporting laboratory's reference range"

__all__ = ["LAB_RANGE", "Finding", "ranges_for", "select_at", "history", "evaluation_time", "interpret", "lab_interval", "number"]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    term: str
    kind: str  # "lab" | "finding"
    observation: Observation
    value: Fraction | None = None  # lab: in the test's canonical unit (None if not convertible)
    unit: str | None = None
    interpretation: str | None = None  # high | low | normal | None (cannot tell)
    phenotype: str | None = None  # HP CURIE (or mkg id) of the lab sign / clinical sign
    reference: ReferenceRange | None = None
    note: str | None = None
    basis: str | None = None  # what decided the interpretation: laboratory flag | reference range | rule

    @property
    def abnormal(self) -> bool:
        if self.kind == "lab":
            return self.interpretation in {"high", "low"}
        return bool(self.observation.present)

    @property
    def direction(self) -> str | None:
        if self.kind == "lab":
            return self.interpretation if self.abnormal else None
        return "present" if self.observation.present else None


def number(value: Fraction | None) -> float | int | None:
    """A JSON-friendly number: an int when whole, else a float rounded to 6 significant digits."""
    if value is None:
        return None
    if value.denominator == 1:
        return int(value)
    return float(f"{float(value):.6g}")


def evaluation_time(patient: Patient, at: datetime | None = None) -> datetime | None:
    if at is not None:
        return at
    times = [o.time for o in patient.observations if o.time is not None]
    return max(times) if times else None


def select_at(patient: Patient, at: datetime | None, *, window: timedelta | None = None) -> list[Observation]:
    """The observations in force at ``at``: latest per code (per code+site+gene for findings).

    With a ``window``, a timed observation older than ``at - window`` is not in
    force (it stays in the patient's history for trends); untimed observations
    always apply.
    """
    chosen: dict[tuple, Observation] = {}
    oldest = None
    if at is not None and window is not None:
        try:
            oldest = at - window
        except OverflowError:  # a window reaching back before year 1: every earlier time is within it
            oldest = None
    for obs in patient.observations:
        if obs.time is not None and at is not None and obs.time > at:
            continue
        if obs.time is not None and oldest is not None and obs.time < oldest:
            continue
        key = (obs.term,) if obs.kind == "lab" else (obs.term, obs.site, obs.gene)
        effective = obs.time if obs.time is not None else at
        current = chosen.get(key)
        if current is None:
            chosen[key] = obs
            continue
        current_time = current.time if current.time is not None else at
        if effective is None or current_time is None or effective >= current_time:
            chosen[key] = obs
    return sorted(chosen.values(), key=lambda o: o.index)


def history(patient: Patient, term: str, at: datetime | None, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Every timed value of a lab test up to ``at``, oldest first, in the test's canonical unit (for trends)."""
    test = kb.lab_tests[term]
    rows = []
    for obs in sorted((o for o in patient.observations if o.term == term and o.time is not None
                       and (at is None or o.time <= at)), key=lambda o: (o.time, o.index)):
        try:
            value = number(convert(obs.value, obs.unit, test.canonical_unit,  # type: ignore[arg-type]
                                   analyte_kind=test.quantity_kind, molar=test.molar))
        except UnitError:
            value = None
        rows.append({"time": obs.time.isoformat().replace("+00:00", "Z"), "value": value,  # type: ignore[union-attr]
                     "comparator": obs.comparator, "index": obs.index})
    return rows


def lab_interval(obs: Observation, test: LabTest, unit: str) -> tuple[Fraction, Fraction | None, bool, bool]:
    """The observation as an interval (low, high, low_inclusive, high_inclusive) in ``unit``.

    A plain value is the point [v, v]; a censored value (semantics 14) is open on
    one side: ``>`` x = (x, inf), ``<`` x = [0, x).  Raises UnitError when the
    value cannot be expressed in ``unit``.
    """
    value = convert(obs.value, obs.unit, unit, analyte_kind=test.quantity_kind, molar=test.molar)  # type: ignore[arg-type]
    if obs.comparator is None:
        return value, value, True, True
    floor = convert(Fraction(0), obs.unit, unit, analyte_kind=test.quantity_kind, molar=test.molar) \
        if test.quantity_kind != "temperature" else Fraction(-273)
    return {
        ">": (value, None, False, False),
        ">=": (value, None, True, False),
        "<": (floor, value, True, False),
        "<=": (floor, value, True, True),
    }[obs.comparator]


def interpret(obs: Observation, patient: Patient, kb: KnowledgeBase) -> Finding:
    if obs.kind == "finding":
        term = kb.terms[obs.term]
        hp = next((x for x in term.exact_matches if x.startswith("HP:")), None)
        return Finding(code=obs.code, term=obs.term, kind="finding", observation=obs, phenotype=hp or term.id)
    test = kb.lab_tests[obs.term]
    try:
        low, high, low_inc, high_inc = lab_interval(obs, test, test.canonical_unit)
        value = low if obs.comparator is None else (low if obs.comparator in {">", ">="} else high)
    except UnitError as error:
        return Finding(code=obs.code, term=obs.term, kind="lab", observation=obs, value=None,
                       unit=obs.unit, note=f"not convertible to {test.canonical_unit}: {error}")
    if obs.lab_range is not None:
        range_low, range_high, range_unit = obs.lab_range
        given = [ReferenceRange(Fraction(0), Fraction(200), None, range_low, range_high, range_unit, LAB_RANGE)]
        interpretation, reference, note = _flag(test, patient, low, high, low_inc, high_inc, ranges=given)
    else:
        interpretation, reference, note = _flag(test, patient, low, high, low_inc, high_inc)
    basis = "rule" if test.high_rule is not None and obs.lab_range is None else "reference range"
    if obs.lab_flag in {"high", "low", "normal"}:
        basis = "laboratory flag"
    interpretation, note = _laboratory_flag(obs, interpretation, note)
    sign = test.high_sign if interpretation == "high" else test.low_sign if interpretation == "low" else None
    phenotype = None
    if sign is not None:
        term = kb.terms[sign]
        phenotype = next((x for x in term.exact_matches if x.startswith("HP:")), term.id)
    return Finding(code=obs.code, term=obs.term, kind="lab", observation=obs, value=value,
                   unit=test.canonical_unit, interpretation=interpretation, phenotype=phenotype, reference=reference,
                   note=note, basis=basis if interpretation is not None else None)


def _laboratory_flag(obs: Observation, judged: str | None, note: str | None) -> tuple[str | None, str | None]:
    """The reporting laboratory's own flag wins over a range (its assay, its population); a conflict is noted.

    ``abnormal`` gives no direction: the range decides it, or nothing does.
    """
    flag = obs.lab_flag
    if flag is None or flag == judged:
        return judged, note
    if flag == "abnormal":
        if judged in {"high", "low"}:
            return judged, note
        return None, _join(note, f"the laboratory flagged it abnormal without a direction; the reference range "
                                 f"says {judged or 'nothing certain'}")
    if judged is not None:
        note = _join(note, f"the laboratory flagged it {flag}; against the reference range it is {judged}; "
                           "the laboratory's flag is used")
    return flag, note


def _join(first: str | None, second: str) -> str:
    return second if not first else f"{first}; {second}"


def ranges_for(test: LabTest, age: Fraction | None, sex: str | None) -> list[ReferenceRange]:
    """The ontology's reference ranges of ``test`` that may apply (every age band if age is unknown, both
    sexes if sex is)."""
    return [r for r in test.reference_ranges
            if (age is None or r.min_age_years <= age < r.max_age_years)
            and (sex not in {"female", "male"} or r.sex in {None, sex})]


def _flag(test: LabTest, patient: Patient, low: Fraction, high: Fraction | None, low_inc: bool,
          high_inc: bool, *, ranges: list[ReferenceRange] | None = None
          ) -> tuple[str | None, ReferenceRange | None, str | None]:
    """High, low or normal against ``ranges`` (default: the ontology's for the patient's age and sex)."""
    if test.high_rule is not None and ranges is None:  # e.g. temperature: fever rule, not a population range
        rule = test.high_rule
        threshold = convert(rule.threshold, rule.unit, test.canonical_unit, analyte_kind=test.quantity_kind)
        if low >= threshold:
            return "high", None, None
        if high is not None and (high < threshold or (high == threshold and not high_inc)):
            return "normal", None, None
        return None, None, None
    note = None
    if ranges is None:
        ranges = ranges_for(test, patient.age_years, patient.sex)
        if not ranges and test.reference_ranges:
            # No band for this age: judge against every band (flag only if abnormal for all), and say so.
            ranges = ranges_for(test, None, patient.sex)
            note = "no reference range for this age in the ontology; judged against the ranges of every age band"
    if not ranges:
        return None, None, None
    lows, highs = [], []
    for r in ranges:
        lows.append(None if r.low is None else convert(r.low, r.unit, test.canonical_unit,
                                                       analyte_kind=test.quantity_kind, molar=test.molar))
        highs.append(None if r.high is None else convert(r.high, r.unit, test.canonical_unit,
                                                         analyte_kind=test.quantity_kind, molar=test.molar))
    union_low = None if any(x is None for x in lows) else min(lows)  # type: ignore[type-var]
    union_high = None if any(x is None for x in highs) else max(highs)  # type: ignore[type-var]
    reference = ranges[0] if len(ranges) == 1 else None
    if union_high is not None and low > union_high:
        return "high", reference, note
    if union_low is not None and high is not None and high < union_low:
        return "low", reference, note
    within_low = union_low is None or low >= union_low
    within_high = union_high is None or (high is not None and high <= union_high)
    if within_low and within_high and len(ranges) == 1:
        return "normal", reference, note
    if within_low and within_high:
        # Inside the union; normal only if inside every candidate range.
        inside_all = all((lo is None or low >= lo) and (hi is None or (high is not None and high <= hi))
                         for lo, hi in zip(lows, highs))
        return ("normal" if inside_all else None), reference, note
    return None, reference, note


def finding_to_dict(finding: Finding, kb: KnowledgeBase) -> dict[str, Any]:
    obs = finding.observation
    out: dict[str, Any] = {"code": finding.code, "term": finding.term, "label": kb.terms[finding.term].label,
                           "kind": finding.kind,
                           "time": obs.time.isoformat().replace("+00:00", "Z") if obs.time else None,
                           "index": obs.index}
    if finding.kind == "lab":
        out.update({"value": number(finding.value), "unit": finding.unit, "comparator": obs.comparator,
                    "given": {"value": number(obs.value), "unit": obs.unit},
                    "interpretation": finding.interpretation, "interpretation_basis": finding.basis,
                    "phenotype": finding.phenotype})
        if finding.reference is not None:
            ref = finding.reference
            out["reference_range"] = {"low": number(ref.low), "high": number(ref.high), "unit": ref.unit,
                                      "source": ref.source}
        if finding.note:
            out["note"] = finding.note
    else:
        out.update({"present": obs.present, "phenotype": finding.phenotype})
        if obs.site:
            out["site"] = kb.terms[obs.site].notation
        if obs.gene:
            out["gene"] = obs.gene
        if obs.value is not None:
            out["value"], out["unit"] = number(obs.value), obs.unit
    return out
