"""One reader for every patient file: the JSON contract, the long CSV or a FHIR R4 Bundle, detected.

The file is read once.  A ``.csv`` file, or one whose first line names the
``patient_id`` column, is the long CSV (:mod:`kg.csvinput`); otherwise it is
JSON, read with exact decimals: an object with ``"resourceType": "Bundle"`` is
FHIR (:mod:`kg.fhir`), any other object the JSON contract (DESIGN.md section 3).
Each patient comes with where each of its observations came from (a CSV line,
a Bundle entry), so a rejected observation can be named in the file.

>>> import tempfile, os
>>> from kg.knowledge import load_knowledge
>>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
...     _ = f.write("patient_id,time,code,value,unit\\np1,,ferritin,700,ng/mL\\n")
>>> read = read_patient_file(f.name, load_knowledge()); os.unlink(f.name)
>>> read.format, [(p.id, where) for p, where in read.patients]
('csv', [('p1', ('line 2',))])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .csvinput import looks_like_csv, read_csv
from .errors import InputError
from .knowledge import KnowledgeBase
from .patient import Patient, read_patient, read_text

__all__ = ["PatientFile", "read_patient_file", "parse_json"]


@dataclass(frozen=True)
class PatientFile:
    """The patients of one file; ``patients[i][1][k]`` says where observation ``k`` of patient ``i`` came from."""

    format: str  # json | csv | fhir
    patients: tuple[tuple[Patient, tuple[str, ...]], ...]

    @property
    def many(self) -> bool:
        """Whether the format can hold several patients (its JSON output is then always an array)."""
        return self.format != "json"


def parse_json(text: str) -> Any:
    """JSON with its numbers as exact decimals; NaN and Infinity refused (ValueError with a one-line reason)."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=_integer, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:  # [[[[...]]]] nested past the parser's stack would otherwise be a traceback
        raise ValueError("not valid JSON: nested too deeply") from None


def _integer(text: str) -> int | Decimal:
    """An integer; a very long one as a Decimal, which int() refuses past 4300 digits with an unrelated message
    and which the value checks then reject as implausible (an observation, not the whole file)."""
    return int(text) if len(text) < 1000 else Decimal(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not valid JSON: {name} is not a number")


def read_patient_file(path: str | Path, kb: KnowledgeBase) -> PatientFile:
    """Every patient of a file, whatever its format; InputError (naming the file) if it cannot be read."""
    where = str(path)
    text = read_text(path)
    if looks_like_csv(path, first_line=text.partition("\n")[0]):
        read = read_csv(text, kb, where=where)
        return PatientFile("csv", tuple((p, tuple(f"line {n}" for n in lines)) for p, lines in read))
    try:
        data = parse_json(text)
    except ValueError as error:
        raise InputError(str(error), where=where) from None
    try:
        if isinstance(data, dict) and data.get("resourceType") == "Bundle":  # kg.fhir.looks_like_fhir
            from .fhir import read_bundle  # fhir.resources loads only when a Bundle comes

            return PatientFile("fhir", tuple((p.patient, p.sources) for p in read_bundle(data, kb=kb)))
        patient = read_patient(data, kb, default_id=Path(path).stem)
    except InputError as error:  # the file, then the place inside it (a Bundle entry) if the error names one
        raise InputError(str(error), where=where) from None
    return PatientFile("json", ((patient, ("",) * patient.given),))
