"""The resources of a FHIR Bundle: validated one at a time, and told apart by patient (used by :mod:`kg.fhir`).

A resource belongs to the Patient its ``subject`` names: ``Patient/<id>``, a URL ending so (a
``/_history/<v>`` suffix is ignored), or the Patient entry's ``fullUrl``.  With one Patient, a
resource without a subject is its; with several, a missing or unknown subject is an InputError.
Without any Patient resource, each subject named is a patient.

>>> invalid("Patient", {"resourceType": "Patient", "birthDate": "2020-13-01"}).split(":")[0]
'birthDate'
>>> PATIENT_REF.search("https://ehr.example.org/fhir/Patient/p-1").group(1)
'p-1'
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .errors import InputError

__all__ = ["READ", "PATIENT_REF", "Resources", "invalid", "reference"]

READ = {"Patient", "Observation", "Condition", "MedicationStatement", "MedicationRequest", "Medication"}
PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})$")
_USED_FIELDS = ("gender", "birthDate", "deceasedBoolean", "deceasedDateTime")


def invalid(resource_type: str, resource: Any) -> str | None:
    """The first validation error of a resource under its R4B model (one line), or None."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    try:
        get_fhir_model_class(resource_type).model_validate(resource)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return " ".join(f"{where + ': ' if where else ''}{first['msg']}".split())
    except (TypeError, ValueError) as error:
        return " ".join(str(error).split())
    return None


class Resources:
    """The readable resources, each with its location, and what the bundle's patients are."""

    def __init__(self, items: list[tuple[str, Any, str | None]], notes: list[str]) -> None:
        self.patients: list[tuple[str, dict]] = []  # (location, Patient)
        self.keys: dict[str, int] = {}  # "Patient/<id>" or fullUrl -> index into patients
        self.others: list[tuple[str, dict]] = []
        self.medications: dict[str, dict] = {}
        skipped: Counter[str] = Counter()
        for where, resource, full_url in items:
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise InputError("not a FHIR resource (no resourceType)", where=where)
            kind = resource["resourceType"]
            label = f"{where} {kind}/{resource['id']}" if isinstance(resource.get("id"), str) else f"{where} {kind}"
            if kind not in READ:
                skipped[kind] += 1
                continue
            if kind != "Observation":
                problem = invalid(kind, resource)
                if problem:
                    raise InputError(f"invalid {kind}: {problem}", where=label)
            if kind == "Patient":
                self._add_patient(label, resource, full_url)
            elif kind == "Medication":
                for key in (f"Medication/{resource.get('id')}", full_url):
                    if key:
                        self.medications[key] = resource
            else:
                self.others.append((label, resource))
        notes.extend(f"{n} {kind} resource{'s' if n > 1 else ''} not read" for kind, n in skipped.items())

    def _add_patient(self, label: str, resource: dict, full_url: str | None) -> None:
        """A Patient, keyed by ``Patient/<id>`` and its fullUrl; the same Patient twice is read once."""
        match = PATIENT_REF.search(full_url) if full_url else None
        keys = [k for k in (f"Patient/{resource['id']}" if resource.get("id") else None, full_url,
                            f"Patient/{match.group(1)}" if match else None) if k]
        known = {self.keys[k] for k in keys if k in self.keys}
        if known:
            first = self.patients[known.pop()][1]
            if any(first.get(name) != resource.get(name) for name in _USED_FIELDS):
                raise InputError("a second Patient with the same id and a different gender, birth or death",
                                 where=label)
            return
        for key in keys:
            self.keys[key] = len(self.patients)
        self.patients.append((label, resource))

    def assign(self) -> dict[int, list[tuple[str, dict]]]:
        """Each resource under the index of its patient (patients made from the subjects if no Patient is given)."""
        named = [(label, resource, reference(resource)) for label, resource in self.others]
        if not self.patients:
            keys = []
            for label, _, ref in named:
                match = PATIENT_REF.search(ref) if ref else None
                if ref and not match and not ref.startswith("urn:"):
                    raise InputError(f"subject {ref!r} is not a Patient", where=label)
                key = f"Patient/{match.group(1)}" if match else ref
                if key and key not in keys:
                    keys.append(key)
            for key in keys or [None]:
                resource = {"resourceType": "Patient", "_synthetic": True}
                if key:
                    resource["id"] = key.rsplit("/", 1)[-1] if key.startswith("Patient/") else key
                    self.keys[key] = len(self.patients)
                self.patients.append((f"subject {key}" if key else "(no subject)", resource))
        owned: dict[int, list[tuple[str, dict]]] = {}
        for label, resource, ref in named:
            owned.setdefault(self._owner(label, ref), []).append((label, resource))
        return owned

    def _owner(self, label: str, reference: str | None) -> int:
        if reference is None:
            if len(self.patients) == 1:
                return 0
            raise InputError("no subject, and the bundle holds several patients", where=label)
        if reference in self.keys:
            return self.keys[reference]
        match = PATIENT_REF.search(reference)
        if match and f"Patient/{match.group(1)}" in self.keys:
            return self.keys[f"Patient/{match.group(1)}"]
        if len(self.patients) == 1 and not self.keys:  # a Patient with neither id nor fullUrl: nothing to match
            return 0
        raise InputError(f"subject {reference!r} names no Patient in the bundle", where=label)


def reference(resource: dict) -> str | None:
    """The ``subject.reference`` of a resource, without a ``/_history/<version>`` suffix."""
    subject = resource.get("subject")
    text = subject.get("reference") if isinstance(subject, dict) else None
    return re.sub(r"/_history/[^/]+$", "", text) if isinstance(text, str) and text else None
