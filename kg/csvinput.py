"""Patients from a long CSV (DESIGN.md section 3): one row per fact, any number of patients.

Columns (a header row names them, in any order): ``patient_id,time,code,value,unit``
and optionally ``comparator``, ``site``, ``gene``, ``agent``.  What a row means
follows from its code, resolved through the ontology as in the JSON form:

* ``age_years`` (value in years) and ``sex`` (value ``female``, ``male``, ...): the patient;
* a condition (``sJIA``, ``infection`` with an ``agent``, a MONDO CURIE): value
  ``confirmed`` (the default when empty) or ``suspected``;
* a therapy: a medication, started at ``time`` if given;
* a clinical finding: value ``true``/``false`` (also yes/no, present/absent), or a
  size with its unit, which asserts the finding;
* anything else is an observation: a number with its unit, possibly censored
  (``>20000``, or a ``comparator`` column).  Unknown codes, units and values are
  rejected row by row with their reason, exactly as in the JSON form.

Each patient becomes the JSON contract object, read by the same
:func:`kg.patient.read_patient`, so the CSV and JSON forms give the same report.
Patients come in the order they first appear; rows of a patient keep file order.

>>> from kg import load_knowledge
>>> text = "patient_id,time,code,value,unit\\np1,,age_years,7,\\np1,2024-05-01,ferritin,>20000,ng/mL\\n"
>>> [(p.id, p.age_years, p.observations[0].comparator, lines) for p, lines in read_csv(text, load_knowledge())]
[('p1', Fraction(7, 1), '>', (3,))]
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import InputError
from .knowledge import KnowledgeBase
from .patient import Patient, read_patient, read_text

__all__ = ["read_csv", "read_csv_file", "looks_like_csv", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS"]

REQUIRED_COLUMNS = ("patient_id", "time", "code", "value", "unit")
OPTIONAL_COLUMNS = ("comparator", "site", "gene", "agent")
_NUMBER = re.compile(r"^\s*(<=|>=|<|>)?\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*$")
_TRUE = {"true", "yes", "present", "1", "y"}
_FALSE = {"false", "no", "absent", "0", "n"}


def looks_like_csv(path: str | Path, *, first_line: str | None = None) -> bool:
    """A ``.csv`` file, or a file whose first line (read unless given) names the ``patient_id`` column."""
    if str(path).lower().endswith(".csv"):
        return True
    if first_line is None:
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as handle:
                first_line = handle.readline()
        except OSError:
            return False
    return not first_line.lstrip().startswith(("{", "[")) and "patient_id" in first_line.lower()


def read_csv_file(path: str | Path, kb: KnowledgeBase) -> list[tuple[Patient, tuple[int, ...]]]:
    """:func:`read_csv` of a file; errors name the file and line."""
    return read_csv(read_text(path), kb, where=str(path))


def read_csv(text: str, kb: KnowledgeBase, *, where: str = "csv") -> list[tuple[Patient, tuple[int, ...]]]:
    """Every patient of a long CSV, each with the file line of each of its observations (by index)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("empty file: expected a header row " + ",".join(REQUIRED_COLUMNS), where=where) from None
    except csv.Error as error:
        raise InputError(f"not CSV: {error}", where=f"{where}:1") from None
    columns = [name.strip().lower() for name in header]
    for name in columns:
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            raise InputError(f"unknown column {name!r} (expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})",
                             where=f"{where}:1")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r}", where=f"{where}:1")
    if len(set(columns)) != len(columns):
        raise InputError("a column is named twice", where=f"{where}:1")
    patients: dict[str, dict[str, Any]] = {}
    lines: dict[str, list[int]] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise InputError(f"{len(row)} fields, the header has {len(columns)}", where=f"{where}:{line}")
            cells = {name: cell.strip() for name, cell in zip(columns, row)}
            patient_id = cells["patient_id"]
            if not patient_id:
                raise InputError("empty patient_id", where=f"{where}:{line}")
            data = patients.setdefault(patient_id, {"id": patient_id, "conditions": [], "medications": [],
                                                     "observations": []})
            if _add_row(data, cells, kb, f"{where}:{line}"):
                lines.setdefault(patient_id, []).append(line)
    except csv.Error as error:
        raise InputError(f"not CSV: {error}", where=f"{where}:{reader.line_num}") from None
    if not patients:
        raise InputError("no rows after the header", where=where)
    out = []
    for patient_id, data in patients.items():
        try:
            patient = read_patient(data, kb, default_id=patient_id)
        except InputError as error:
            raise InputError(f"patient {patient_id!r}: {error.problem}", where=where) from None
        out.append((patient, tuple(lines.get(patient_id, ()))))
    return out


def _add_row(data: dict[str, Any], cells: dict[str, str], kb: KnowledgeBase, where: str) -> bool:
    """Put one row into the patient's JSON object; True when it became an observation."""
    code, value = cells["code"], cells["value"]
    key = code.lower()
    if key in ("age_years", "sex"):
        field_value: Any = _number(value) if key == "age_years" else value
        if key == "age_years" and not isinstance(field_value, Decimal):
            raise InputError(f"age_years {value!r} is not a number", where=where)
        if key in data and data[key] != field_value:
            raise InputError(f"a second, different {key} ({value!r})", where=where)
        data[key] = field_value
        return False
    term = kb.resolve_code(code)
    kind = term.kind if term else None
    if kind in ("Disease", "Trigger"):
        condition = {"code": code, "status": value or "confirmed"}
        if cells.get("agent"):
            condition["agent"] = cells["agent"]
        data["conditions"].append(condition)
        return False
    if kind == "Therapy":
        data["medications"].append({"code": code, **({"start": cells["time"]} if cells["time"] else {})})
        return False
    observation: dict[str, Any] = {"code": code}
    if cells["time"]:
        observation["time"] = cells["time"]
    for name in ("site", "gene"):
        if cells.get(name):
            observation[name] = cells[name]
    if kind == "ClinicalSign" and value.lower() in _TRUE | _FALSE:
        observation["present"] = value.lower() in _TRUE
    elif value:
        match = _NUMBER.match(value)
        observation["value"] = Decimal(match.group(2)) if match else value  # not a number: rejected with its text
        comparator = cells.get("comparator") or (match.group(1) if match else None)
        if match and match.group(1) and cells.get("comparator") and cells["comparator"] != match.group(1):
            comparator = f"{cells['comparator']} and {match.group(1)}"  # contradictory: rejected as unknown
        if comparator:
            observation["comparator"] = comparator
    if cells["unit"]:
        observation["unit"] = cells["unit"]
    data["observations"].append(observation)
    return True


def _number(text: str) -> Decimal | str:
    match = _NUMBER.match(text)
    return Decimal(match.group(2)) if match and not match.group(1) else text
