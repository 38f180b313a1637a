"""Test helper: a JSON-contract patient (DESIGN.md section 3) written as a FHIR R4 Bundle.

``patient_bundle(patient)`` gives a Bundle of type ``collection`` holding a Patient, one Observation per
observation, a Condition per condition and a MedicationStatement per medication, each of which validates
under the ``fhir.resources.R4B`` models.  It is written from the contract and the ontology's codes alone
(LOINC, HP, MONDO, UBERON, HGNC, else the code system ``https://w3id.org/mas-kg/code``), not from the
reader in ``kg/fhir.py``, so the round trip tests the reader.

The age becomes a ``birthDate``: the day whose age at the latest observation time (completed years plus
the fraction of the current birthday-year, a 29 February birthday falling on 28 February in other years)
is closest to ``age_years``.  An age that no day gives exactly (7.2 years when the birthday-year has 366
days) comes back within half a day.
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = ["patient_bundle", "age_at", "OUR_CODES", "LOINC", "HP", "MONDO", "UCUM", "HGNC", "UBERON",
           "SNOMED", "INTERPRETATION", "DUE_TO", "FIXED_TIMESTAMP"]

LOINC = "http://loinc.org"
HP = "http://human-phenotype-ontology.org"  # HL7 THO; codes are CURIEs, "HP:0001744"
MONDO = "http://purl.obolibrary.org/obo/mondo.owl"
UBERON = "http://purl.obolibrary.org/obo/uberon.owl"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
HGNC = "http://www.genenames.org/geneId"
OUR_CODES = "https://w3id.org/mas-kg/code"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DUE_TO = "http://hl7.org/fhir/StructureDefinition/condition-dueTo"  # the agent of an infection
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FIXED_TIMESTAMP = "2024-01-01T00:00:00Z"  # Bundle.timestamp when no observation is timed
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_FLAGS = {"high": "H", "low": "L", "normal": "N", "abnormal": "A"}
# Units as labs print them -> UCUM codes (the contract accepts both; FHIR wants UCUM in Quantity.code).
_UCUM = {"x10^9/L": "10*9/L", "G/L": "10*9/L", "K/uL": "10*3/uL", "/mm3": "/mm3", "mg/dl": "mg/dL",
         "°F": "[degF]", "°C": "Cel", "mm/hr": "mm/h", "IU/L": "[IU]/L", "µg/L": "ug/L", "μg/L": "ug/L"}


@functools.lru_cache(maxsize=1)
def _kb():
    from kg.knowledge import load_knowledge

    return load_knowledge()


def age_at(birth: date, when: date) -> Fraction:
    """Completed years plus the elapsed fraction of the current birthday-year (29 Feb -> 28 Feb)."""
    def anniversary(year: int) -> date:
        try:
            return birth.replace(year=year)
        except ValueError:  # 29 February in a common year
            return date(year, 2, 28)

    years = when.year - birth.year
    if anniversary(when.year) > when:
        years -= 1
    last, following = anniversary(birth.year + years), anniversary(birth.year + years + 1)
    return years + Fraction((when - last).days, (following - last).days)


def _birth_date(age: Any, when: date) -> date:
    target = Fraction(Decimal(repr(age)) if isinstance(age, float) else Decimal(age))
    guess = when - timedelta(days=int(target * Fraction(36525, 100)))
    days = [guess + timedelta(days=d) for d in range(-400, 401)]
    return min((d for d in days if d <= when), key=lambda d: (abs(age_at(d, when) - target), -d.toordinal()))


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if len(text) > 10 else \
        datetime.fromisoformat(text + "T00:00:00+00:00")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _local(curie: str) -> str:
    """The code within its system: OBO ontologies keep the CURIE (``HP:0001744``), LOINC and SNOMED do not."""
    prefix, local = curie.split(":", 1)
    return curie if prefix.upper() in ("HP", "MONDO", "UBERON") else local


def _codeable(code: str) -> dict:
    """A CodeableConcept for a contract code: LOINC, HP or MONDO where the ontology has one, else ours."""
    kb = _kb()
    system_of = {"LOINC": LOINC, "HP": HP, "MONDO": MONDO, "UBERON": UBERON, "SCTID": SNOMED}
    if ":" in code and code.split(":", 1)[0].upper() in system_of:
        return {"coding": [{"system": system_of[code.split(":", 1)[0].upper()], "code": _local(code)}]}
    term = kb.resolve_code(code)
    if term is not None:
        curies = list(term.exact_matches) + list(term.xrefs)
        if term.kind == "LabTest":
            curies = sorted(kb.lab_tests[term.id].loinc, key=lambda c: c not in term.exact_matches)
        for curie in curies:
            prefix = curie.split(":", 1)[0]
            if prefix in system_of and kb.resolve_code(curie) is term:
                return {"coding": [{"system": system_of[prefix], "code": _local(curie), "display": term.label}]}
        if term.notation:
            return {"coding": [{"system": OUR_CODES, "code": term.notation, "display": term.label}]}
    return {"coding": [{"system": OUR_CODES, "code": code}]} if code.strip() == code and code and \
        "  " not in code else {"text": code}


def _quantity(value: Any, unit: str | None, comparator: str | None = None) -> dict:
    out: dict[str, Any] = {"value": value}
    if comparator:
        out["comparator"] = comparator
    if unit:
        out.update(unit=unit, system=UCUM, code=_UCUM.get(unit, unit))
    return out


def _observation(obs: dict, index: int, subject: dict) -> dict:
    kb = _kb()
    term = kb.resolve_code(obs["code"]) if isinstance(obs.get("code"), str) else None
    kind = term.kind if term else None
    category = "laboratory" if kind == "LabTest" else "exam"
    if term is not None and term.notation == "temperature":
        category = "vital-signs"
    resource: dict[str, Any] = {
        "resourceType": "Observation", "id": f"obs-{index}", "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": _codeable(obs["code"]), "subject": dict(subject)}
    if obs.get("time"):
        resource["effectiveDateTime"] = obs["time"]
    if kind == "ClinicalSign":
        if obs.get("value") is not None:
            assert obs.get("present", True), "a sized finding that is absent has no FHIR form"
            resource["valueQuantity"] = _quantity(obs["value"], obs.get("unit"))
        else:
            resource["valueBoolean"] = bool(obs.get("present", True))
    elif obs.get("value") is not None:
        resource["valueQuantity"] = _quantity(obs["value"], obs.get("unit"), obs.get("comparator"))
    if obs.get("site"):
        resource["bodySite"] = _codeable(obs["site"])
    if obs.get("gene"):  # FHIR genomics: component "Gene studied [ID]" with an HGNC coding
        gene = kb.resolve_code(obs["gene"]) or next(
            (t for t in kb.terms.values() if t.kind == "Gene" and t.label.upper() == obs["gene"].upper()), None)
        hgnc = [x for x in (gene.xrefs if gene else ()) if x.startswith("HGNC:")]
        coding = {"system": HGNC, "code": hgnc[0] if hgnc else obs["gene"], "display": obs["gene"].upper()}
        resource["component"] = [{"code": {"coding": [{"system": LOINC, "code": "48018-6",
                                                       "display": "Gene studied [ID]"}]},
                                  "valueCodeableConcept": {"coding": [coding], "text": obs["gene"].upper()}}]
    if obs.get("interpretation"):
        resource["interpretation"] = [{"coding": [{"system": INTERPRETATION,
                                                   "code": _FLAGS[obs["interpretation"]]}]}]
    if obs.get("reference_range"):
        ref = obs["reference_range"]
        unit = ref.get("unit") or obs.get("unit")
        resource["referenceRange"] = [{key: _quantity(ref[key], unit) for key in ("low", "high")
                                       if ref.get(key) is not None}]
    return resource


def patient_bundle(patient: dict) -> dict:
    """The FHIR R4 Bundle (type collection) of a JSON-contract patient (see the module docstring)."""
    pid = str(patient.get("id", "patient"))
    seed = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/mas-kg/test-bundle/" + pid)
    patient_url = f"urn:uuid:{seed}"
    resource: dict[str, Any] = {"resourceType": "Patient"}
    if _FHIR_ID.match(pid):
        resource["id"] = pid
        subject = {"reference": f"Patient/{pid}"}
    else:  # not a FHIR id: an identifier, and references through the entry's fullUrl
        resource["identifier"] = [{"system": "https://w3id.org/mas-kg/patient-id", "value": pid}]
        subject = {"reference": patient_url}
    if patient.get("sex"):
        resource["gender"] = patient["sex"]
    times = [_time(o["time"]) for o in patient.get("observations", []) if isinstance(o, dict) and o.get("time")]
    latest = max(times) if times else None
    if patient.get("age_years") is not None:
        when = latest.date() if latest else _time(FIXED_TIMESTAMP).date()
        resource["birthDate"] = _birth_date(patient["age_years"], when).isoformat()
    entries = [{"fullUrl": patient_url, "resource": resource}]

    def add(item: dict) -> None:
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(seed, item['resourceType'] + '/' + item['id'])}",
                        "resource": item})

    for index, condition in enumerate(patient.get("conditions", [])):
        code = condition["code"]
        codeable = _codeable(code)
        extension = []
        if condition.get("agent"):  # the ontology's term for an infection by this agent, else the agent as cause
            kb = _kb()
            base = kb.resolve_code(code)
            narrower = [t for t in kb.terms.values() if base is not None and t.agent
                        and t.agent.lower() == condition["agent"].lower() and kb.is_a(t.id, base.id)]
            mondo = [x for t in narrower for x in t.xrefs if x.startswith("MONDO:")]
            if mondo:
                codeable = {"coding": [{"system": MONDO, "code": mondo[0], "display": narrower[0].label}]}
            else:
                extension = [{"url": DUE_TO, "valueCodeableConcept": {"text": condition["agent"]}}]
        status = "provisional" if condition.get("status") == "suspected" else "confirmed"
        add({"resourceType": "Condition", "id": f"cond-{index}", **({"extension": extension} if extension else {}),
             "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                            "code": "active"}]},
             "verificationStatus": {"coding": [{
                 "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": status}]},
             "code": codeable, "subject": dict(subject)})
    for index, medication in enumerate(patient.get("medications", [])):
        statement = {"resourceType": "MedicationStatement", "id": f"med-{index}", "status": "active",
                     "medicationCodeableConcept": {"text": medication["code"]}, "subject": dict(subject)}
        if medication.get("start"):
            statement["effectivePeriod"] = {"start": medication["start"]}
        add(statement)
    for index, obs in enumerate(patient.get("observations", [])):
        add(_observation(obs, index, subject))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": f"bundle-{seed.hex[:12]}", "type": "collection",
                              "entry": entries}
    if latest is None:
        bundle["timestamp"] = FIXED_TIMESTAMP
    return bundle
