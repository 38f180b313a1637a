"""Units: lab spellings to UCUM, dimensional checks and exact conversion (pint).

Values are exact :class:`fractions.Fraction` throughout, so a value exactly on a
published cut-off stays on the published side after conversion
(reference/semantics.md decision 1).  Analyte-specific molar factors (e.g.
triglycerides mg/dL = mmol/L x 88.57) come from the ontology and are passed in.

>>> convert(Fraction(156, 100), "g/L", "mg/dL")
Fraction(156, 1)
>>> convert(Fraction(95), normalise_unit("K/uL"), "10*9/L")
Fraction(95, 1)
>>> normalise_unit("x10^9/L"), normalise_unit("µg/L"), normalise_unit("°F")
('10*9/L', 'ug/L', '[degF]')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import pint

__all__ = [
    "UnitError",
    "MolarFactor",
    "normalise_unit",
    "quantity_kind",
    "convert",
    "affine",
    "exact",
]

_DEFINITIONS = """
tera- = 1e12 = T-
giga- = 1e9 = G-
mega- = 1e6 = M-
kilo- = 1e3 = k-
deci- = 1e-1 = d-
centi- = 1e-2 = c-
milli- = 1e-3 = m-
micro- = 1e-6 = u-
nano- = 1e-9 = n-
pico- = 1e-12 = p-
gram = [mass] = g
meter = [length] = m
liter = decimeter ** 3 = L = l
mole = [substance] = mol
second = [time] = s = sec
minute = 60 * second = min
hour = 60 * minute = h = hr
cell = [count]
enzyme_unit = micromole / minute = U
katal = mole / second = kat
arbitrary_unit = [arbitrary] = AU
kelvin = [temperature] = K
degree_Celsius = kelvin; offset: 273.15 = Cel
degree_Fahrenheit = 5 / 9 * kelvin; offset: 233.15 + 200 / 9 = degF
"""

#: The pint dimensionality of each quantity kind named in the ontology.
_KIND_DIMENSIONS = {
    "mass-concentration": {"[mass]": 1, "[length]": -3},
    "substance-concentration": {"[substance]": 1, "[length]": -3},
    "number-concentration": {"[count]": 1, "[length]": -3},
    "catalytic-concentration": {"[substance]": 1, "[time]": -1, "[length]": -3},
    "arbitrary-concentration": {"[arbitrary]": 1, "[length]": -3},
    "temperature": {"[temperature]": 1},
    "velocity": {"[length]": 1, "[time]": -1},
    "duration": {"[time]": 1},
    "length": {"[length]": 1},
}


class UnitError(ValueError):
    """A unit that is unknown, or of the wrong dimension for the analyte."""


@dataclass(frozen=True, slots=True)
class MolarFactor:
    """mass = molar x mass_per_molar, between two named units (from the ontology)."""

    mass_unit: str
    molar_unit: str
    mass_per_molar: Fraction


@lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    registry = pint.UnitRegistry(None, non_int_type=Fraction, autoconvert_offset_to_baseunit=True)
    for line in _DEFINITIONS.strip().splitlines():
        registry.define(line)
    return registry


# Spellings found on lab reports, mapped to UCUM.  Count units first: they carry
# a power of ten that pint cannot read from "10*9".
_COUNT_PATTERNS = [
    (re.compile(r"^(?:x\s*)?10\s*(?:\*|\^|e|E)\s*9\s*/\s*l$", re.I), "10*9/L"),
    (re.compile(r"^(?:x\s*)?10\s*(?:\*|\^|e|E)\s*3\s*/\s*(?:ul|mm3|mm\^3|mm\*\*3)$", re.I), "10*3/uL"),
    (re.compile(r"^(?:x\s*)?10\s*(?:\*|\^|e|E)\s*6\s*/\s*(?:ul|mm3)$", re.I), "10*6/uL"),
    (re.compile(r"^(?:x\s*)?10\s*(?:\*|\^|e|E)\s*12\s*/\s*l$", re.I), "10*12/L"),
    (re.compile(r"^G\s*/\s*[lL]$"), "10*9/L"),  # "G/L" is giga per litre; lower-case g/L is grams
    (re.compile(r"^k\s*/\s*ul$", re.I), "10*3/uL"),
    (re.compile(r"^(?:cells?\s*)?/\s*(?:ul|mm3|mm\^3)$", re.I), "/uL"),
    (re.compile(r"^(?:cells?\s*)?/\s*l$", re.I), "/L"),
]
_UCUM_TO_PINT = {
    "10*9/L": "Gcell/L",
    "10*3/uL": "kcell/uL",
    "10*6/uL": "Mcell/uL",
    "10*12/L": "Tcell/L",  # tera-: pint reads no "cell*1e12" expression
    "/uL": "cell/uL",
    "/L": "cell/L",
    "Cel": "Cel",
    "[degF]": "degF",
    "mm/h": "mm/h",
    "[arb'U]/mL": "AU/mL",
}
_TEMPERATURE = {"cel": "Cel", "°c": "Cel", "ºc": "Cel", "degc": "Cel", "c": "Cel", "celsius": "Cel",
                "[degf]": "[degF]", "°f": "[degF]", "ºf": "[degF]", "degf": "[degF]", "f": "[degF]",
                "fahrenheit": "[degF]"}
_RATE = re.compile(r"^mm\s*/\s*(?:h|hr|hour|1st\s*h|1h)$", re.I)
_TIME = {"s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s"}


_MARKUP = re.compile(r"[<>&\"=;\\]")  # markup and quoting characters never occur in a unit


def normalise_unit(unit: str) -> str:
    """Map a unit as printed on a lab report to its UCUM code (raises UnitError)."""
    if not isinstance(unit, str) or not unit.strip():
        raise UnitError("missing unit")
    if _MARKUP.search(unit):  # pint would parse "<b>ng/mL</b>" and the markup would pass on as a UCUM code
        raise UnitError(f"unknown unit {unit!r}")
    text = unit.strip().replace("µ", "u").replace("μ", "u").replace("×", "x").replace("⁹", "9").replace("³", "3")
    text = re.sub(r"\{[^}]*\}", "", text).strip()  # UCUM annotations such as {FEU}
    if text.lower() in _TEMPERATURE:
        return _TEMPERATURE[text.lower()]
    if _RATE.match(text):
        return "mm/h"
    if text.lower() in _TIME:
        return "s"
    for pattern, ucum in _COUNT_PATTERNS:
        if pattern.match(text):
            return ucum
    text = re.sub(r"\s+", "", text)
    text = re.sub(r"(?i)units?(?=/)", "U", text)
    text = re.sub(r"^(?:IU|\[IU\]|\[iU\])(?=/)", "U", text)  # [IU]/L: the UCUM code of IU/L (FHIR Quantity.code)
    text = re.sub(r"(?i)meq(?=/)", "mmol", text)  # monovalent ions (sodium) only
    text = re.sub(r"(?<=/)(m|d|u|c|n)?l$", lambda m: (m.group(1) or "") + "L", text)
    text = text.replace("mcg", "ug").replace("mkat", "mkat")
    try:
        _parse(text)
    except UnitError:
        raise UnitError(f"unknown unit {unit!r}") from None
    return text


def _pint_expression(ucum: str, kind: str | None = None) -> str:
    expression = _UCUM_TO_PINT.get(ucum, ucum)
    if kind == "arbitrary-concentration":
        # sCD25 "U/mL" are assay units, not enzyme units (micromol/min).
        expression = re.sub(r"(?<![A-Za-z])k?U(?=/)", lambda m: m.group(0)[:-1] + "AU", expression)
    return expression


def _parse(expression: str, kind: str | None = None) -> pint.Unit:
    try:
        return _registry().parse_units(_pint_expression(expression, kind))
    except Exception:  # pint's tokenizer fails in many ways (even an assert) on text that is not a unit
        raise UnitError(f"unknown unit {expression!r}") from None


def quantity_kind(ucum: str, *, analyte_kind: str | None = None) -> str:
    """The quantity kind of a UCUM unit (arbitrary units when the analyte says so).

    >>> quantity_kind("mg/dL"), quantity_kind("mmol/L"), quantity_kind("U/mL", analyte_kind="arbitrary-concentration")
    ('mass-concentration', 'substance-concentration', 'arbitrary-concentration')
    """
    dims = dict(_parse(ucum, analyte_kind).dimensionality)
    for kind, wanted in _KIND_DIMENSIONS.items():
        if dims == wanted:
            return kind
    raise UnitError(f"unit {ucum!r} is not a quantity the engine reads")


def convert(value: Fraction, from_unit: str, to_unit: str, *, analyte_kind: str | None = None,
            molar: MolarFactor | None = None) -> Fraction:
    """Convert ``value`` exactly; crosses mass <-> substance only with ``molar``.

    Every conversion the engine meets is affine (temperature) or linear, so
    the exact (scale, offset) pair is computed once per unit pair and cached.

    >>> convert(Fraction(265), "mg/dL", "mmol/L", analyte_kind="mass-concentration",
    ...         molar=MolarFactor("mg/dL", "mmol/L", Fraction("88.57")))
    Fraction(26500, 8857)
    """
    scale, offset = _affine(from_unit, to_unit, analyte_kind, molar)
    return value * scale + offset


def affine(from_unit: str, to_unit: str, *, analyte_kind: str | None = None,
           molar: MolarFactor | None = None) -> tuple[Fraction, Fraction]:
    """The exact (scale, offset) with ``convert(v) == v * scale + offset`` (raises UnitError).

    >>> affine("[degF]", "Cel")
    (Fraction(5, 9), Fraction(-160, 9))
    """
    return _affine(from_unit, to_unit, analyte_kind, molar)


@lru_cache(maxsize=4096)
def _affine(from_unit: str, to_unit: str, analyte_kind: str | None,
            molar: MolarFactor | None) -> tuple[Fraction, Fraction]:
    offset = _convert(Fraction(0), from_unit, to_unit, analyte_kind=analyte_kind, molar=molar)
    return _convert(Fraction(1), from_unit, to_unit, analyte_kind=analyte_kind, molar=molar) - offset, offset


def _convert(value: Fraction, from_unit: str, to_unit: str, *, analyte_kind: str | None = None,
             molar: MolarFactor | None = None) -> Fraction:
    registry = _registry()
    source_kind = quantity_kind(from_unit, analyte_kind=analyte_kind)
    target_kind = quantity_kind(to_unit, analyte_kind=analyte_kind)
    if source_kind == target_kind:
        quantity = registry.Quantity(value, _parse(from_unit, analyte_kind))
        return Fraction(quantity.to(_parse(to_unit, analyte_kind)).magnitude)
    pair = {source_kind, target_kind}
    if pair == {"mass-concentration", "substance-concentration"} and molar is not None:
        if source_kind == "substance-concentration":
            in_molar = _convert(value, from_unit, molar.molar_unit)
            return _convert(in_molar * molar.mass_per_molar, molar.mass_unit, to_unit)
        in_mass = _convert(value, from_unit, molar.mass_unit)
        return _convert(in_mass / molar.mass_per_molar, molar.molar_unit, to_unit)
    raise UnitError(f"cannot convert {from_unit} ({source_kind}) to {to_unit} ({target_kind})")


MAX_EXPONENT = 308  # a decimal's exponent beyond what a double can hold is no measurement


def exact(number: object) -> Fraction:
    """Read a JSON number as the exact decimal it prints as (semantics decision 1).

    A :class:`~decimal.Decimal` (how the CSV reader reads a number's text) is taken exactly.

    >>> exact(0.1) == Fraction(1, 10), exact(684), exact(Decimal("2.9920000000000000001")).denominator
    (True, Fraction(684, 1), 10000000000000000000)
    """
    if isinstance(number, Decimal):
        if not number.is_finite():
            raise ValueError("not a finite number")
        if number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
            raise ValueError("not a plausible number")  # 1e999999999 as a Fraction would exhaust memory
        return Fraction(number)
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ValueError("not a number")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("not a finite number")
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)
