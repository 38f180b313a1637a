"""Read patient JSON v1 (DESIGN.md section 3) and normalise it into Observations.

Patient-level problems raise :class:`~kg.errors.InputError` (exit status 2);
an observation that cannot be used is kept as a :class:`Rejected` with its index
and reason, so that every observation given is either used or rejected.

>>> from kg.knowledge import load_knowledge
>>> p = read_patient({"id": "p1", "age_years": 7, "observations": [
...     {"code": "ferritin", "value": 700, "unit": "ug/L"}, {"code": "ferriton", "value": 1, "unit": "ng/mL"}]},
...     load_knowledge())
>>> [o.code for o in p.observations], [(r.index, r.reason) for r in p.rejected]
(['ferritin'], [(1, "unknown code 'ferriton'")])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import InputError
from .knowledge import KnowledgeBase
from .units import UnitError, convert, exact, normalise_unit, quantity_kind

__all__ = ["Observation", "Rejected", "Condition", "Patient", "read_patient", "read_text", "parse_time",
           "latest_plausible_time"]

_COMPARATORS = {"<", "<=", ">=", ">"}
_LAB_FLAGS = {"high", "low", "normal", "abnormal"}
_CONDITION_STATUSES = {"confirmed", "suspected"}
# A result timed later than now (plus a day for clock and time-zone slips) is a data error, not a measurement.
_FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Observation:
    """One usable observation, its value exact in the unit given (UCUM)."""

    index: int
    code: str  # the ontology short name
    term: str  # ontology term id (mkg:...)
    kind: str  # "lab" or "finding"
    time: datetime | None
    value: Fraction | None = None
    unit: str | None = None
    comparator: str | None = None
    present: bool | None = None
    site: str | None = None
    gene: str | None = None
    given_code: str = ""
    # what the reporting laboratory said, when it said it (a FHIR interpretation / referenceRange)
    lab_flag: str | None = None  # high | low | normal | abnormal
    lab_range: tuple[Fraction | None, Fraction | None, str] | None = None  # (low, high, unit)

    def to_dict(self) -> dict[str, Any]:
        """The observation as read and normalised (``observations.items`` of the report)."""
        out: dict[str, Any] = {"index": self.index, "code": self.code, "given_code": self.given_code or self.code,
                               "term": self.term, "kind": self.kind,
                               "time": self.time.isoformat().replace("+00:00", "Z") if self.time else None}
        if self.value is not None:
            out["value"] = int(self.value) if self.value.denominator == 1 else float(self.value)
            out["unit"] = self.unit
        for key in ("comparator", "present", "site", "gene"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.lab_flag is not None:
            out["interpretation"] = self.lab_flag
        if self.lab_range is not None:
            low, high, unit = self.lab_range
            out["reference_range"] = {"low": _plain(low), "high": _plain(high), "unit": unit}
        return out


def _plain(value: Fraction | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value.denominator == 1 else float(value)


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    code: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Condition:
    code: str
    term: str
    status: str
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class Medication:
    """A medication as given; ``term`` is the ontology therapy it names (None if the ontology has none)."""

    code: str
    term: str | None
    start: datetime | None = None


@dataclass(frozen=True)
class Patient:
    id: str
    age_years: Fraction | None
    sex: str | None
    conditions: tuple[Condition, ...]
    medications: tuple[Medication, ...]
    observations: tuple[Observation, ...]
    rejected: tuple[Rejected, ...]
    given: int
    notes: tuple[str, ...] = field(default=())


def _medications(raw: Any, kb: KnowledgeBase, notes: list[str]) -> list[Medication]:
    """Medications name ontology therapies (label or synonym); an unknown one is kept and noted."""
    if not isinstance(raw, list) or not all(isinstance(m, dict) and isinstance(m.get("code"), str) for m in raw):
        raise InputError("medications must be a list of objects with a string code")
    out = []
    for index, item in enumerate(raw):
        start = item.get("start")
        if start is not None:
            try:
                start = parse_time(start)
            except ValueError as error:
                raise InputError(f"medications[{index}].start: {error}") from None
        term = kb.resolve_code(item["code"])
        if term is None or term.kind != "Therapy":
            notes.append(f"medication {item['code']!r} is not a therapy in the ontology: listed, not reasoned about")
            out.append(Medication(item["code"], None, start))
        else:
            out.append(Medication(item["code"], term.id, start))
    return out


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time; a date is midnight UTC, a naive time is UTC.

    >>> parse_time("2024-03-02").isoformat(), parse_time("2024-03-02T08:00:00Z").isoformat()
    ('2024-03-02T00:00:00+00:00', '2024-03-02T08:00:00+00:00')
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("time must be an ISO 8601 string")
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"unparseable time {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def latest_plausible_time() -> datetime:
    """Now plus a day's slack: a result timed later is a data error (the FHIR reader and the screen read the
    same limit)."""
    return datetime.now(timezone.utc) + _FUTURE_SLACK


def read_text(path: str | Path) -> str:
    """A patient file's UTF-8 text (a byte-order mark is dropped); InputError names the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read file ({error.strerror})", where=str(path)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start})", where=str(path)) from None


def read_patient(data: Any, kb: KnowledgeBase, *, default_id: str = "patient") -> Patient:
    """Validate a parsed patient object and normalise its observations."""
    if not isinstance(data, dict):
        raise InputError(f"a patient must be a JSON object, not {type(data).__name__}")
    patient_id = data.get("id", default_id)
    if not isinstance(patient_id, (str, int)) or isinstance(patient_id, bool) or str(patient_id).strip() == "":
        raise InputError("id must be a non-empty string")
    age = data.get("age_years")
    if age is not None:
        try:
            age = exact(age)
        except ValueError:
            raise InputError(f"age_years must be a number, not {age!r}") from None
        if age < 0 or age > 130:
            raise InputError(f"age_years {float(age):g} is impossible")
    sex = data.get("sex")
    if sex is not None and (not isinstance(sex, str) or sex.lower() not in {"female", "male", "other", "unknown"}):
        raise InputError(f"sex must be female, male, other or unknown, not {sex!r}")
    conditions, notes = _conditions(data.get("conditions", []), kb)
    medications = _medications(data.get("medications", []), kb, notes)
    observations = data.get("observations")
    if not isinstance(observations, list):
        raise InputError("observations must be a list")
    used, rejected = [], []
    latest = latest_plausible_time()
    for index, raw in enumerate(observations):
        try:
            used.append(_observation(index, raw, kb, latest))
        except _Reject as reason:
            code = raw.get("code") if isinstance(raw, dict) and isinstance(raw.get("code"), str) else None
            rejected.append(Rejected(index, code, str(reason)))
    return Patient(id=str(patient_id), age_years=age, sex=sex.lower() if sex else None,
                   conditions=tuple(conditions), medications=tuple(medications),
                   observations=tuple(used), rejected=tuple(rejected), given=len(observations), notes=tuple(notes))


def _conditions(raw: Any, kb: KnowledgeBase) -> tuple[list[Condition], list[str]]:
    if not isinstance(raw, list):
        raise InputError("conditions must be a list")
    conditions, notes = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise InputError(f"conditions[{index}] must be an object with a string code")
        status = item.get("status", "confirmed")
        if not isinstance(status, str):
            raise InputError(f"conditions[{index}].status must be a string")
        term = kb.resolve_code(item["code"])
        if term is None or term.kind not in {"Disease", "Trigger"}:
            notes.append(f"conditions[{index}]: unknown condition {item['code']!r} ignored")
            continue
        agent = item.get("agent")
        if agent is not None:
            if not isinstance(agent, str):
                raise InputError(f"conditions[{index}].agent must be a string")
            narrower = [t for t in kb.terms.values() if t.agent and t.agent.lower() == agent.lower() and kb.is_a(t.id, term.id)]
            if narrower:
                term = narrower[0]
        if status.lower() not in _CONDITION_STATUSES:
            notes.append(f"conditions[{index}]: status {status!r} is neither confirmed nor suspected; ignored")
            continue
        conditions.append(Condition(code=item["code"], term=term.id, status=status.lower(), agent=agent))
    return conditions, notes


class _Reject(Exception):
    pass


def _show(value: Any) -> str:
    """A given value for a one-line message: as typed (a Decimal as its digits), cut short if very long."""
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _observation(index: int, raw: Any, kb: KnowledgeBase, latest: datetime) -> Observation:
    if not isinstance(raw, dict):
        raise _Reject("an observation must be a JSON object")
    code = raw.get("code")
    if not isinstance(code, str) or not code.strip():
        raise _Reject("missing code")
    term = kb.resolve_code(code)
    if term is None:
        raise _Reject(f"unknown code {code!r}")
    time = None
    if raw.get("time") is not None:
        try:
            time = parse_time(raw["time"])
        except ValueError as error:
            raise _Reject(str(error)) from None
        if time > latest:
            raise _Reject(f"time {raw['time']!r} is in the future")
    if term.kind == "LabTest":
        return _lab(index, raw, kb, term.id, time, code)
    if term.kind == "ClinicalSign":
        return _finding(index, raw, kb, term.id, time, code)
    if term.kind == "LabSign":
        raise _Reject(f"{code!r} is a laboratory sign: give the laboratory value with its unit")
    where = "medications" if term.kind == "Therapy" else "conditions"
    raise _Reject(f"{code!r} is a {term.kind.lower()}, not an observation (put it under '{where}')")


def _lab(index: int, raw: dict, kb: KnowledgeBase, term_id: str, time: datetime | None, given: str) -> Observation:
    test = kb.lab_tests[term_id]
    if "value" not in raw or raw["value"] is None:
        raise _Reject(f"{test.notation} needs a value and a unit")
    try:
        value = exact(raw["value"])
    except ValueError:
        raise _Reject(f"value {_show(raw['value'])} is not a finite number") from None
    comparator = raw.get("comparator")
    if comparator is not None and comparator not in _COMPARATORS:
        raise _Reject(f"comparator {comparator!r} is not one of <, <=, >=, >")
    try:
        unit = normalise_unit(raw.get("unit"))  # type: ignore[arg-type]
        kind = quantity_kind(unit, analyte_kind=test.quantity_kind)
    except UnitError as error:
        raise _Reject(f"{error} for {test.notation}") from None
    if kind != test.quantity_kind and kind != test.kept_unconvertible_kind:
        convertible = test.molar is not None and {kind, test.quantity_kind} == {"mass-concentration", "substance-concentration"}
        if not convertible:
            raise _Reject(f"unit {raw.get('unit')!r} is a {kind}, not a {test.quantity_kind} ({test.notation})")
    if value < 0 and kind != "temperature":
        raise _Reject(f"negative value {float(value):g} for {test.notation}")
    if comparator == "<" and value == 0 and kind != "temperature":  # [0, 0) holds no value (semantics 14)
        raise _Reject(f"comparator '<' 0 allows no value for {test.notation}")
    bound = test.plausible_max  # ontology: mkg:plausibleMaximum, in the canonical unit
    if bound is not None:
        try:
            canonical = convert(value, unit, test.canonical_unit, analyte_kind=test.quantity_kind, molar=test.molar)
        except UnitError:
            canonical = None
        if canonical is not None and canonical > bound:
            raise _Reject(f"impossible value {float(value):g} {unit} for {test.notation} "
                          f"(above {float(bound):g} {test.canonical_unit})")
    if kind == "temperature":
        celsius = convert(value, unit, "Cel")
        if not (Fraction(20) <= celsius <= Fraction(46)):
            raise _Reject(f"impossible body temperature {float(celsius):g} Cel")
    flag = raw.get("interpretation")
    if flag is not None and flag not in _LAB_FLAGS:
        raise _Reject(f"interpretation {flag!r} is not one of high, low, normal, abnormal")
    lab_range = _lab_range(raw.get("reference_range"), unit, test) if raw.get("reference_range") is not None else None
    return Observation(index=index, code=test.notation, term=term_id, kind="lab", time=time, value=value,
                       unit=unit, comparator=comparator, given_code=given, lab_flag=flag, lab_range=lab_range)


def _lab_range(raw: Any, value_unit: str, test: Any) -> tuple[Fraction | None, Fraction | None, str]:
    """The reporting laboratory's reference range: ``{"low", "high", "unit"}`` (unit defaults to the value's)."""
    if not isinstance(raw, dict) or (raw.get("low") is None and raw.get("high") is None):
        raise _Reject("reference_range must be an object with a low and/or a high")
    bounds = []
    for key in ("low", "high"):
        if raw.get(key) is None:
            bounds.append(None)
            continue
        try:
            bounds.append(exact(raw[key]))
        except ValueError:
            raise _Reject(f"reference_range.{key} {_show(raw[key])} is not a finite number") from None
    low, high = bounds
    if low is not None and high is not None and low > high:
        raise _Reject(f"reference_range low {float(low):g} is above its high {float(high):g}")
    try:
        unit = normalise_unit(raw.get("unit") or value_unit)
        for bound in (low, high):
            if bound is not None:
                convert(bound, unit, value_unit, analyte_kind=test.quantity_kind, molar=test.molar)
    except UnitError as error:
        raise _Reject(f"reference_range: {error} for {test.notation}") from None
    return low, high, unit


def _finding(index: int, raw: dict, kb: KnowledgeBase, term_id: str, time: datetime | None, given: str) -> Observation:
    term = kb.terms[term_id]
    if raw.get("comparator") is not None:
        raise _Reject("a comparator is meaningless on a clinical finding")
    present = raw.get("present", True)  # an observation of a finding asserts it (semantics 12)
    if not isinstance(present, bool):
        raise _Reject(f"present must be true or false, not {present!r}")
    value = unit = None
    if raw.get("value") is not None:
        if term.accepts_value_unit is None:
            raise _Reject(f"{term.notation} takes no value")
        try:
            value = exact(raw["value"])
        except ValueError:
            raise _Reject(f"value {_show(raw['value'])} is not a finite number") from None
        if value < 0:
            raise _Reject(f"negative size {float(value):g}")
        try:
            unit = normalise_unit(raw.get("unit") or term.accepts_value_unit)
            value = convert(value, unit, term.accepts_value_unit)
            unit = term.accepts_value_unit
        except UnitError as error:
            raise _Reject(f"{error} for the size of {term.notation}") from None
    site = raw.get("site")
    if site is not None:
        if not isinstance(site, str):
            raise _Reject("site must be a string")
        site_term = kb.resolve_code(site)
        if site_term is None or site_term.kind != "Anatomy":
            raise _Reject(f"unknown site {site!r}")
        site = site_term.id
    gene = raw.get("gene")
    if gene is not None and not isinstance(gene, str):
        raise _Reject("gene must be a string")
    return Observation(index=index, code=term.notation or term_id, term=term_id, kind="finding", time=time,
                       value=value, unit=unit, present=present, site=site, gene=gene.upper() if gene else None,
                       given_code=given)


