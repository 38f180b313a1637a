"""Patients from FHIR R4 resources: a Bundle (or CDS Hooks prefetch) becomes the JSON contract.

Each patient's resources are converted to the patient object of DESIGN.md section 3 and read by
:func:`kg.patient.read_patient`, so every check and rejection of the JSON form applies unchanged.
Nothing is invented: what cannot be read is rejected with its reason or named in a note
(``patient.notes``, shown in every report).  Codes, units and flags: :mod:`kg.fhir_codes`;
validation and patient assignment: :mod:`kg.fhir_resources`.

* **Validation**: each resource is validated alone with its ``fhir.resources.R4B`` model.  An
  invalid Observation is a rejected observation (the first error is the reason); an invalid
  Patient, Condition, MedicationStatement/Request or Medication, or Bundle envelope, is an
  :class:`~kg.errors.InputError` naming its location.
* **Patients**: a resource belongs to the Patient its ``subject`` names (``Patient/<id>``, a URL
  ending so, or the Patient entry's ``fullUrl``).  With one patient everything without a subject
  is its; with several, a missing or unknown subject is an InputError.  With no Patient resource,
  each subject named is a patient (age and sex unknown).  ``id`` = ``Patient.id``, else the first
  identifier, else ``patient``; ``gender`` = sex.  ``age_years`` = completed years at the latest
  observation time (else ``Bundle.timestamp``) plus the elapsed fraction of the birthday-year (29
  February counts as 28 February), truncated to 6 decimals; a partial ``birthDate`` gives no age
  (a note).  A birthDate after the observations, or a death before them, is an InputError.
* **Observation** ``code``: the first Coding that resolves (LOINC, HPO, MONDO, SNOMED, UBERON, our
  code system ``https://w3id.org/mas-kg/code``), else ``code.text``; otherwise the first Coding as
  given (``LOINC:9999-9``), rejected as an unknown code.  ``status`` final, amended, corrected,
  preliminary is used; any other status, a ``dataAbsentReason``, a panel without a value of its
  own, or an unreadable ``value[x]`` rejects the observation.  ``valueQuantity`` gives ``value``
  (exact), ``unit`` (the UCUM ``code``, else ``unit``) and ``comparator``; ``valueBoolean`` or a
  Present/Absent concept (LOINC LA9633-4/LA9634-2, SNOMED 52101004/2667000) gives ``present``; a
  finding without a value is present (semantics 12).  ``effectiveDateTime``, ``effectiveInstant``
  or ``effectivePeriod.start`` is the time.  ``bodySite`` of a finding is its ``site``.  A
  component "Gene studied [ID]" (LOINC 48018-6, HGNC coding) gives ``gene``.
* ``interpretation`` (v3 ObservationInterpretation): H, HH, HU, > high; L, LL, LU, < low; N
  normal; A, AA abnormal; other codes are noted.  ``referenceRange``: the first range of type
  normal (or untyped) whose ``appliesTo`` and ``age`` do not exclude the patient, with its units;
  low and high in different units reject the observation.
* **Condition**: the first code naming a disease or trigger (codings, then displays, then text);
  ``verificationStatus`` confirmed (or none) -> confirmed, provisional/differential/unconfirmed ->
  suspected, refuted/entered-in-error -> left out (a note); an inactive clinicalStatus is noted.
  The agent of an infection is the ``condition-dueTo`` extension.
* **MedicationStatement/Request**: ``medicationCodeableConcept`` or a referenced Medication (in
  the Bundle or contained); start = ``effective[x]`` / ``authoredOn``.  Statement status
  entered-in-error or not-taken, request status cancelled, entered-in-error or draft: left out (a
  note); stopped, on-hold, intended or unknown: listed, with a note.
* Other resource types are counted in a note ("3 Encounter resources not read").

>>> from kg.knowledge import load_knowledge
>>> bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
...     {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "2017-01-01"}},
...     {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
...                   "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
...                   "effectiveDateTime": "2024-07-02T08:00:00Z",
...                   "valueQuantity": {"value": 12000, "system": "http://unitsofmeasure.org", "code": "ng/mL"}}}]}
>>> [read] = read_bundle(bundle, kb=load_knowledge())
>>> read.data["age_years"], read.patient.observations[0].code, read.sources
(Decimal('7.500000'), 'ferritin', ('entry[1] Observation/o1',))
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from .errors import InputError
from .fhir_resources import Resources, invalid
from .fhir_codes import (CONDITION_DUE_TO, REFERENCE_RANGE_MEANING, contract_code, gene_of, interpretation,
                         presence, resolve_codings, same_unit, unit_of)
from .knowledge import KnowledgeBase
from .patient import Patient, Rejected, latest_plausible_time, parse_time, read_patient, read_text

__all__ = ["FhirPatient", "read_resources", "read_bundle", "read_bundle_file", "looks_like_fhir", "contract_json"]

_USED_STATUS = {"final", "amended", "corrected", "preliminary"}
_SUSPECTED = {"provisional", "differential", "unconfirmed"}
_LEFT_OUT = {"MedicationStatement": {"entered-in-error", "not-taken"},
             "MedicationRequest": {"entered-in-error", "cancelled", "draft"}}
_NOTED = {"stopped", "on-hold", "intended", "unknown"}
_AGE_UNITS = {"a": Fraction(1), "year": Fraction(1), "years": Fraction(1), "mo": Fraction(1, 12),
              "month": Fraction(1, 12), "months": Fraction(1, 12), "wk": Fraction(700, 36525), "d": Fraction(100, 36525)}


@dataclass(frozen=True)
class FhirPatient:
    """One patient of a Bundle: its JSON-contract object, the patient read from it, and where each
    observation came from (``sources[i]`` for observation ``i``, e.g. ``"entry[3] Observation/obs-3"``)."""

    data: dict[str, Any]
    patient: Patient
    sources: tuple[str, ...]


def looks_like_fhir(data: Any) -> bool:
    """A parsed JSON object whose ``resourceType`` is ``Bundle``."""
    return isinstance(data, dict) and data.get("resourceType") == "Bundle"


def contract_json(data: dict[str, Any]) -> str:
    """``data`` as JSON text, its Decimal numbers written exactly as numbers."""
    marks: dict[str, str] = {}

    def number(value: Any) -> str:
        if isinstance(value, Decimal):
            marks[f"\0{len(marks)}\0"] = str(value)
            return f"\0{len(marks) - 1}\0"
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(data, default=number, ensure_ascii=False)
    for mark, digits in marks.items():
        text = text.replace(json.dumps(mark), digits)
    return text


def read_bundle_file(path: str | Path, *, kb: KnowledgeBase) -> list[FhirPatient]:
    """:func:`read_bundle` of a JSON file (numbers read exactly); InputError names the file."""
    from .inputs import parse_json

    try:
        data = parse_json(read_text(path))
    except ValueError as error:
        raise InputError(str(error), where=str(path)) from None
    try:
        return read_bundle(data, kb=kb)
    except InputError as error:
        raise InputError(str(error), where=str(path)) from None


def read_bundle(data: Any, *, kb: KnowledgeBase) -> list[FhirPatient]:
    """The patients of a parsed Bundle, in order of first appearance."""
    if not looks_like_fhir(data):
        raise InputError("not a FHIR Bundle (no \"resourceType\": \"Bundle\")")
    entries = data.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InputError("a Bundle without entries")
    envelope = {**data, "entry": [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
                                  for e in entries]}
    problem = invalid("Bundle", envelope)
    if problem:
        raise InputError(f"invalid Bundle: {problem}")
    items = [(f"entry[{i}]", e.get("resource"), e.get("fullUrl")) for i, e in enumerate(entries)]
    missing = sum(1 for _, resource, _ in items if resource is None)
    return _read([(w, r, u) for w, r, u in items if r is not None], kb, timestamp=data.get("timestamp"),
                 notes=[f"{missing} Bundle entr{'ies' if missing > 1 else 'y'} without a resource"] if missing else [])


def read_resources(resources: Sequence[tuple[str, Any]], *, kb: KnowledgeBase) -> list[FhirPatient]:
    """The patients of (location label, resource JSON object) pairs, e.g. a CDS Hooks prefetch; a
    Bundle among them (a search result) gives its entries, labelled ``<label>.entry[i]``."""
    items: list[tuple[str, Any, str | None]] = []
    for where, resource in resources:
        if looks_like_fhir(resource):
            entries = resource.get("entry") or []
            items += [(f"{where}.entry[{i}]", e.get("resource"), e.get("fullUrl"))
                      for i, e in enumerate(entries) if isinstance(e, dict) and e.get("resource") is not None]
        else:
            items.append((where, resource, None))
    return _read(items, kb, timestamp=None, notes=[])


def _read(items: list[tuple[str, Any, str | None]], kb: KnowledgeBase, *, timestamp: Any,
          notes: list[str]) -> list[FhirPatient]:
    resources = Resources(items, notes)
    if not resources.patients and not resources.others:
        raise InputError("no Patient, Observation, Condition or medication resource to read")
    owned = resources.assign()
    out, ids = [], Counter()
    for index, (label, patient) in enumerate(resources.patients):
        builder = _Builder(kb, resources.medications, notes=list(notes))
        for where, resource in owned.get(index, []):
            builder.add(where, resource)
        data = builder.patient_fields(label, patient, timestamp)
        ids[data["id"]] += 1
        if ids[data["id"]] > 1:
            data["id"] = f"{data['id']}-{ids[data['id']]}"
        try:
            read = read_patient(data, kb, default_id="patient")
        except InputError as error:
            raise InputError(error.problem, where=label) from None
        rejected = {**{r.index: r for r in read.rejected},
                    **{i: Rejected(i, data["observations"][i].get("code"), reason)
                       for i, reason in builder.rejections.items()}}
        read = replace(read, observations=tuple(o for o in read.observations if o.index not in builder.rejections),
                       rejected=tuple(rejected[i] for i in sorted(rejected)),
                       notes=read.notes + tuple(builder.notes))
        out.append(FhirPatient(data=data, patient=read, sources=tuple(builder.sources)))
    return out


class _Builder:
    """Collects one patient's contract object from its resources."""

    def __init__(self, kb: KnowledgeBase, medications: dict[str, dict], *, notes: list[str]) -> None:
        self.kb, self.medication_resources, self.notes = kb, medications, notes
        self.observations: list[dict[str, Any]] = []
        self.sources: list[str] = []
        self.rejections: dict[int, str] = {}  # observation index -> the converter's reason
        self.conditions: list[dict[str, Any]] = []
        self.medications: list[dict[str, Any]] = []
        self.ranges: list[tuple[int, list]] = []  # referenceRange, judged once the age is known

    def add(self, label: str, resource: dict) -> None:
        kind = resource["resourceType"]
        if kind == "Observation":
            self._observation(label, resource)
        elif kind == "Condition":
            self._condition(label, resource)
        else:
            self._medication(label, resource)

    # ---- observations

    def _reject(self, label: str, obs: dict[str, Any], reason: str, *, index: int | None = None) -> None:
        """Keep the slot (``present: null`` makes read_patient reject it too); the reason is ours."""
        kept = {"code": obs.get("code"), "present": None, "rejected": reason,
                **({"time": obs["time"]} if "time" in obs else {})}
        if index is None:
            index = len(self.observations)
            self.observations.append(kept)
            self.sources.append(label)
        self.observations[index] = kept
        self.rejections[index] = reason

    def _observation(self, label: str, resource: dict) -> None:
        code_concept = _dict(resource.get("code"))
        contract, term = resolve_codings(code_concept.get("coding"), self.kb, names=(code_concept.get("text"),))
        obs: dict[str, Any] = {"code": contract["code"] if contract else None}
        moment = resource.get("effectiveDateTime") or resource.get("effectiveInstant") or \
            _dict(resource.get("effectivePeriod")).get("start")
        if isinstance(moment, str):
            obs["time"] = moment
        problem = invalid("Observation", resource)
        if problem:
            return self._reject(label, obs, f"invalid Observation: {problem}")
        if resource.get("status") not in _USED_STATUS:
            return self._reject(label, obs, f"status {resource.get('status')}")
        if resource.get("dataAbsentReason"):
            reason = resource["dataAbsentReason"]
            text = next((c.get("code") for c in reason.get("coding", []) if c.get("code")), None) or reason.get("text")
            return self._reject(label, obs, f"dataAbsentReason {text}")
        finding = term is not None and term.kind == "ClinicalSign"
        gene, components = gene_of(resource.get("component"), self.kb) if finding else (None, resource.get("component"))
        values = [k for k in resource if k.startswith("value")]
        if not values and (components or resource.get("hasMember")):
            return self._reject(label, obs, "a panel (component or hasMember) without a value of its own: "
                                            "send each result as its own Observation")
        if components:
            self.notes.append(f"{label}: {len(components)} component(s) not read")
        if gene:
            obs["gene"] = gene
        value = values[0] if values else None
        if value in ("valueQuantity", "valueInteger"):
            quantity = resource[value] if value == "valueQuantity" else {"value": resource[value]}
            if not isinstance(quantity, dict):  # "valueQuantity": null or a number: no value, rejected as such
                quantity = {}
            if "value" in quantity:
                obs["value"] = quantity["value"]
            if unit_of(quantity):
                obs["unit"] = unit_of(quantity)
            if quantity.get("comparator") is not None:
                obs["comparator"] = quantity["comparator"]
        elif value == "valueBoolean":
            obs["present"] = resource[value]
        elif value == "valueCodeableConcept":
            present = presence(resource[value])
            if present is None:
                shown = resource[value].get("text") or [c.get("code") for c in resource[value].get("coding", [])]
                return self._reject(label, obs, f"coded value {shown} is neither a number nor present/absent")
            obs["present"] = present
        elif value is not None:
            return self._reject(label, obs, f"{value} is not read (a quantity, boolean or present/absent)")
        if finding and resource.get("bodySite"):
            site, _ = resolve_codings(resource["bodySite"].get("coding"), self.kb,
                                      names=(resource["bodySite"].get("text"),))
            if site:
                obs["site"] = site["code"]
        flag, ignored = interpretation(resource.get("interpretation"))
        if flag:
            obs["interpretation"] = flag
        if ignored:
            self.notes.append(f"{label}: interpretation {', '.join(ignored)} not read")
        if resource.get("referenceRange"):
            self.ranges.append((len(self.observations), resource["referenceRange"]))
        self.observations.append(obs)
        self.sources.append(label)

    def _reference_ranges(self, age: Fraction | None, sex: str | None) -> None:
        for index, ranges in self.ranges:
            label, obs = self.sources[index], self.observations[index]
            for ref in ranges:
                types = [(c.get("system"), c.get("code")) for c in (ref.get("type") or {}).get("coding", [])]
                if types and (REFERENCE_RANGE_MEANING, "normal") not in types:
                    continue
                if not self._applies(ref, age, sex, label):
                    continue
                low, high = ref.get("low") or {}, ref.get("high") or {}
                if low.get("value") is None and high.get("value") is None:
                    self.notes.append(f"{label}: a referenceRange without low or high not read")
                    continue
                units = [u for u in (unit_of(low), unit_of(high)) if u]
                if len(units) == 2 and not same_unit(*units):
                    self._reject(label, obs, f"referenceRange low and high in different units ({units[0]}, {units[1]})",
                                 index=index)
                    break
                obs["reference_range"] = {"low": low.get("value"), "high": high.get("value"),
                                          **({"unit": units[0]} if units else {})}
                break

    def _applies(self, ref: dict, age: Fraction | None, sex: str | None, label: str) -> bool:
        for concept in ref.get("appliesTo") or []:
            codes = {str(c.get("code")).lower() for c in concept.get("coding", [])} | {str(concept.get("text")).lower()}
            sexes = codes & {"male", "female", "248153007", "248152002"}
            if not sexes:
                self.notes.append(f"{label}: a referenceRange for {sorted(codes - {'none'})} not used (cannot judge)")
                return False
            wanted = {"male" if c in ("male", "248153007") else "female" for c in sexes}
            if sex not in wanted:
                return False
        bounds = ref.get("age")
        if bounds:
            if age is None:
                self.notes.append(f"{label}: a referenceRange by age not used (age unknown)")
                return False
            for key, outside in (("low", lambda a, b: a < b), ("high", lambda a, b: a > b)):
                bound = bounds.get(key) or {}
                factor = _AGE_UNITS.get(str(bound.get("code") or bound.get("unit") or "a"))
                if bound.get("value") is None:
                    continue
                if factor is None:
                    self.notes.append(f"{label}: a referenceRange age in {bound.get('unit')!r} not used")
                    return False
                if outside(age, Fraction(str(bound["value"])) * factor):
                    return False
        return True

    # ---- conditions and medications

    def _condition(self, label: str, resource: dict) -> None:
        concept = resource.get("code") or {}
        codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]  # {"coding": null} is no coding
        names = tuple(c.get("display") for c in codings if c.get("display")) + (concept.get("text"),)
        contract, term = resolve_codings(concept.get("coding"), self.kb, kinds={"Disease", "Trigger"}, names=names)
        if term is not None:  # the ontology's short name where it has one (reports show it), else as resolved
            contract = contract_code(term, self.kb) or contract
        if contract is None:
            self.notes.append(f"{label}: a Condition without a code, not read")
            return
        verification = _code_of(resource.get("verificationStatus")) or "confirmed"
        if verification in ("refuted", "entered-in-error"):
            self.notes.append(f"{label}: {contract['code']!r} {verification}, not used")
            return
        clinical = _code_of(resource.get("clinicalStatus"))
        if clinical in ("inactive", "remission", "resolved"):
            self.notes.append(f"{label}: {contract['code']!r} is {clinical}; counted as a condition of the patient")
        for extension in resource.get("extension") or []:
            if extension.get("url") == CONDITION_DUE_TO and "agent" not in contract:
                cause = extension.get("valueCodeableConcept") or {}
                agent = cause.get("text") or next((c.get("display") or c.get("code") for c in cause.get("coding", [])),
                                                  None)
                if agent:
                    contract = {**contract, "agent": agent}
        status = "suspected" if verification in _SUSPECTED else verification
        self.conditions.append({**contract, "status": status})

    def _medication(self, label: str, resource: dict) -> None:
        kind, status = resource["resourceType"], resource.get("status")
        concept = resource.get("medicationCodeableConcept")
        if concept is None:
            reference = (resource.get("medicationReference") or {}).get("reference", "")
            contained = {f"#{c.get('id')}": c for c in resource.get("contained") or [] if isinstance(c, dict)}
            medication = contained.get(reference) or self.medication_resources.get(reference) or \
                self.medication_resources.get(re.sub(r"^.*/(Medication/[^/]+)$", r"\1", reference))
            concept = (medication or {}).get("code")
            if concept is None:
                concept = {"text": (resource.get("medicationReference") or {}).get("display") or reference}
                self.notes.append(f"{label}: medication {reference!r} not found in the bundle")
        names = tuple(c.get("display") for c in concept.get("coding", []) if c.get("display")) + \
            (concept.get("text"),) + tuple(c.get("code") for c in concept.get("coding", []) if c.get("code"))
        contract, term = resolve_codings(None, self.kb, kinds={"Therapy"}, names=names)
        name = contract["code"] if contract else None
        if not name:
            self.notes.append(f"{label}: a {kind} without a medication code, not read")
            return
        if status in _LEFT_OUT[kind]:
            self.notes.append(f"{label}: {name!r} status {status}, not listed")
            return
        if status in _NOTED:
            self.notes.append(f"{label}: {name!r} status {status}; listed as a medication")
        start = resource.get("authoredOn") if kind == "MedicationRequest" else \
            resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
        item: dict[str, Any] = {"code": name}
        if start:
            try:
                parse_time(start)
                item["start"] = start
            except ValueError:
                self.notes.append(f"{label}: start {start!r} is not a date and time; left out")
        self.medications.append(item)

    # ---- the patient

    def patient_fields(self, label: str, resource: dict, timestamp: Any) -> dict[str, Any]:
        data: dict[str, Any] = {}
        identifiers = [i.get("value") for i in resource.get("identifier") or [] if i.get("value")]
        data["id"] = resource.get("id") or (identifiers[0] if identifiers else "patient")
        if resource.get("_synthetic"):
            self.notes.append(f"no Patient resource for {label}: age and sex unknown")
        if resource.get("gender"):
            data["sex"] = resource["gender"]
        age = self._age(label, resource, timestamp)
        if age is not None:
            data["age_years"] = age
        self._reference_ranges(Fraction(age) if age is not None else None, data.get("sex"))
        data.update(conditions=self.conditions, medications=self.medications, observations=self.observations)
        return data

    def _age(self, label: str, resource: dict, timestamp: Any) -> Decimal | None:
        times, plausible = [], latest_plausible_time()
        for index, obs in enumerate(self.observations):
            if obs.get("time") and index not in self.rejections:
                try:
                    moment = parse_time(obs["time"])
                except ValueError:
                    continue
                if moment <= plausible:  # a later one is rejected as in the future: it must not age the patient
                    times.append(moment)
        latest = max(times) if times else None
        death = _timestamp(resource.get("deceasedDateTime"))
        if death and latest and death < latest:
            raise InputError(f"an observation after deceasedDateTime ({resource['deceasedDateTime']})", where=label)
        if resource.get("deceasedBoolean") or death:
            self.notes.append("the patient is recorded as deceased")
        birth = resource.get("birthDate")
        if not birth:
            return None
        if not isinstance(birth, str):  # the R4B model lets some non-strings through (1e-300)
            raise InputError(f"birthDate must be a date text (YYYY-MM-DD), not {birth!r}", where=label)
        if len(birth) != 10:
            self.notes.append(f"birthDate {birth!r} is partial: age unknown (it could fall either side of an age rule)")
            return None
        born = date.fromisoformat(birth)
        when = latest or _timestamp(timestamp)
        if when is None:
            self.notes.append("no observation time and no Bundle timestamp: age unknown")
            return None
        first = min(times).date() if times else when.date()
        if born > first:
            raise InputError(f"birthDate after the observation ({birth} > {first.isoformat()})", where=label)
        return _age_years(born, when.date())


def _timestamp(value: Any) -> datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _age_years(born: date, when: date) -> Decimal:
    """Completed years plus the elapsed fraction of the birthday-year, truncated to 6 decimals.

    >>> _age_years(date(2006, 5, 2), date(2024, 5, 2)), _age_years(date(2016, 2, 29), date(2023, 2, 28))
    (Decimal('18.000000'), Decimal('7.000000'))
    """
    def anniversary(year: int) -> date:
        try:
            return born.replace(year=year)
        except ValueError:  # 29 February in a common year
            return date(year, 2, 28)

    years = when.year - born.year - (anniversary(when.year) > when)
    last, following = anniversary(born.year + years), anniversary(born.year + years + 1)
    exact = years + Fraction((when - last).days, (following - last).days)
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal("0.000001"), rounding=ROUND_FLOOR)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _code_of(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    return next((c.get("code") for c in concept.get("coding") or [] if isinstance(c, dict) and c.get("code")), None)
