"""Resolve each distinct code, unit, site and condition of a cohort once, with the engine's own resolvers.

A cohort of millions of rows holds a few hundred distinct spellings.  Each is
resolved here exactly as :func:`kg.patient.read_patient` resolves it (the same
``kb.resolve_code``, :func:`kg.units.normalise_unit`, :func:`kg.units.convert`),
and the answers become small lookup tables joined in the query: the rows
themselves are never touched by Python.  A lab unit becomes integer factors
``A``, ``B`` per slot so that ``raw * A + B`` is the value in the slot's unit
times the slot's denominator ``D`` (see :mod:`kg.screen.compiler`).

>>> from kg import load_knowledge
>>> kb = load_knowledge()
>>> code_row("Ferritin", kb, SlotPlan.from_criteria(kb))[:2]
('ferritin', 'lab')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import lcm

from ..knowledge import KnowledgeBase
from ..units import UnitError, affine, convert, normalise_unit, quantity_kind
from .compiler import SlotPlan

__all__ = ["code_row", "UnitRows", "unit_rows", "site_row", "condition_row", "CODE_COLUMNS", "SITE_COLUMNS",
           "AGE", "SEX", "CONDITION_STATUSES", "SEXES"]

AGE, SEX = "age_years", "sex"
CONDITION_STATUSES = ("confirmed", "suspected")
SEXES = ("female", "male", "other", "unknown")
CODE_COLUMNS = [("code_key", "VARCHAR"), ("kind", "VARCHAR"), ("term", "VARCHAR"), ("test", "BIGINT"),
                ("notation", "VARCHAR"), ("code_reason", "VARCHAR"), ("temperature", "BOOLEAN"),
                ("size_unit", "VARCHAR")]
SITE_COLUMNS = [("site_key", "VARCHAR"), ("site_term", "VARCHAR")]


def code_row(code: str, kb: KnowledgeBase, plan: SlotPlan) -> tuple:
    """(code_key, kind, term, test, notation, reason, temperature, size unit) -- kg.patient._observation's dispatch."""
    key = code.strip().lower()
    if key in (AGE, SEX):
        return (key, key, None, None, key, None, False, None)
    term = kb.resolve_code(code)
    if term is None:
        return (key, "reject", None, None, None, f"unknown code {code.strip()!r}", False, None)
    if term.kind in ("Disease", "Trigger"):
        return (key, "condition", term.id, None, term.notation, None, False, None)
    if term.kind == "Therapy":
        return (key, "therapy", term.id, None, term.notation, None, False, None)
    if term.kind == "LabTest":
        test = kb.lab_tests[term.id]
        index = plan.tests.index(term.id) if term.id in plan.tests else None
        return (key, "lab", term.id, index, test.notation, None, test.quantity_kind == "temperature", None)
    if term.kind == "ClinicalSign":
        return (key, "finding", term.id, None, term.notation or term.id, None, False, term.accepts_value_unit)
    if term.kind == "LabSign":
        reason = f"{code.strip()!r} is a laboratory sign: give the laboratory value with its unit"
    else:
        where = "medications" if term.kind == "Therapy" else "conditions"
        reason = f"{code.strip()!r} is a {term.kind.lower()}, not an observation (put it under '{where}')"
    return (key, "reject", term.id, None, None, reason, False, None)


@dataclass
class UnitRows:
    """The ``dict_unit`` table: per (code, unit), a reason or the factors of every slot."""

    columns: list[tuple[str, str]]
    rows: list[tuple]


def _integer(value: Fraction) -> Decimal:
    assert value.denominator == 1 and abs(value) < 10**17, value
    return Decimal(value.numerator)


def unit_rows(pairs: list[tuple[str, str]], kb: KnowledgeBase, plan: SlotPlan) -> UnitRows:
    """Resolve (code_key, unit text) pairs of labs and sized findings; fixes each slot's denominator D."""
    width = max((len(plan.of_test(t)) for t in plan.tests), default=0)
    resolved = []
    for code_key, unit_text in pairs:
        term = kb.resolve_code(code_key)
        if term is None:
            continue
        if term.kind == "LabTest":
            resolved.append((code_key, term.id, unit_text, *_lab_unit(term.id, unit_text, kb, plan)))
        elif term.kind == "ClinicalSign" and term.accepts_value_unit:
            resolved.append((code_key, term.id, unit_text, *_size_unit(term, unit_text), None))
    for slot in plan.slots.values():  # D: every factor met in the data and every threshold become whole
        dens = [t.denominator for t in slot.thresholds] + [slot.scaled(Fraction(-273)).denominator if slot.temperature else 1]
        for row in resolved:
            factors = row[4].get((slot.term, slot.unit)) if row[4] else None
            if factors:
                dens += [factors[0].denominator, factors[1].denominator]
        slot.denominator = lcm(*dens)
    columns = [("code_key", "VARCHAR"), ("unit_key", "VARCHAR"), ("unit_reason", "VARCHAR"),
               ("size_factor", "DECIMAL(38,9)"), ("cel_a", "DECIMAL(38,9)"), ("cel_b", "DECIMAL(38,9)"),
               ("cel_lo", "DECIMAL(38,9)"), ("cel_hi", "DECIMAL(38,9)"),
               # the plausible maximum in this unit, max_p / max_q (a value above it is rejected), and the reason
               ("max_p", "DECIMAL(38,9)"), ("max_q", "DECIMAL(18,0)"), ("max_reason", "VARCHAR")]
    # integers (|x| < 10**17), typed so that the per-row product needs no cast
    columns += [(f"{name}{i}", "DECIMAL(18,0)") for i in range(1, width + 1) for name in ("a", "b")]
    rows = []
    for code_key, term_id, unit_text, reason, factors, size, celsius, bound in resolved:
        slots: list[Decimal | None] = [None, None] * width  # (a, b) of each slot, in slot order
        for slot in plan.of_test(term_id):
            pair = factors.get((slot.term, slot.unit)) if factors else None
            if pair:
                at = 2 * (slot.index - 1)
                slots[at:at + 2] = [_integer(pair[0] * slot.denominator), _integer(pair[1] * slot.denominator)]
        cel = [None] * 4
        if celsius:
            scale, offset = celsius
            d = lcm(scale.denominator, offset.denominator)
            cel = [_integer(scale * d), _integer(offset * d), _integer(Fraction(20 * d)), _integer(Fraction(46 * d))]
        top = [None] * 3
        if bound is not None:
            test = kb.lab_tests[term_id]
            top = [Decimal(bound.numerator), _integer(Fraction(bound.denominator)),
                   f"for {test.notation} (above {float(test.plausible_max):g} {test.canonical_unit})"]
        rows.append((code_key, unit_text, reason, size, *cel, *top, *slots))
    return UnitRows(columns, rows)


def _lab_unit(term_id: str, unit_text: str, kb: KnowledgeBase, plan: SlotPlan):
    """(reason, {(term, unit): (scale, offset)}, None, celsius factors, plausible maximum in this unit)
    -- kg.patient._lab's unit checks."""
    test = kb.lab_tests[term_id]
    try:
        unit = normalise_unit(unit_text or None)  # type: ignore[arg-type]
        kind = quantity_kind(unit, analyte_kind=test.quantity_kind)
    except UnitError as error:
        return f"{error} for {test.notation}", None, None, None, None
    if kind != test.quantity_kind and kind != test.kept_unconvertible_kind:
        convertible = test.molar is not None and {kind, test.quantity_kind} == {"mass-concentration",
                                                                                 "substance-concentration"}
        if not convertible:
            return f"unit {unit_text!r} is a {kind}, not a {test.quantity_kind} ({test.notation})", None, None, None, None
    factors = {}
    for slot in plan.of_test(term_id):
        try:
            factors[(slot.term, slot.unit)] = affine(unit, slot.unit, analyte_kind=test.quantity_kind, molar=test.molar)
        except UnitError:
            pass  # kept but unusable in this unit (sCD25 in pg/mL, semantics 10): the item is missing
    celsius = affine(unit, "Cel") if kind == "temperature" else None
    bound = None
    if test.plausible_max is not None:
        try:
            bound = convert(test.plausible_max, test.canonical_unit, unit, analyte_kind=test.quantity_kind,
                            molar=test.molar)
        except UnitError:
            pass  # kept but not convertible (sCD25 in pg/mL): no bound, as in kg.patient._lab
    return None, factors, None, celsius, bound


def _size_unit(term, unit_text: str):
    """(reason, None, size factor, None) -- kg.patient._finding's size conversion."""
    try:
        unit = normalise_unit(unit_text or term.accepts_value_unit)
        scale, offset = affine(unit, term.accepts_value_unit)
    except UnitError as error:
        return f"{error} for the size of {term.notation}", None, None, None
    exact = scale * 10**9
    if offset != 0 or exact.denominator != 1:
        return f"unit {unit_text!r}: no exact decimal factor to {term.accepts_value_unit}", None, None, None
    return None, None, Decimal(exact.numerator) / Decimal(10**9), None


def site_row(site: str, kb: KnowledgeBase) -> tuple:
    term = kb.resolve_code(site)
    return (site.strip().lower(), term.id if term is not None and term.kind == "Anatomy" else None)


def condition_row(code_key: str, agent: str | None, kb: KnowledgeBase, populations: list[str]) -> tuple:
    """(code_key, agent_key, term, pop0..popN) -- kg.patient._conditions' narrowing by agent."""
    term = kb.resolve_code(code_key)
    term_id = term.id if term is not None else None
    if term is not None and agent:
        narrower = [t for t in kb.terms.values()
                    if t.agent and t.agent.lower() == agent.lower() and kb.is_a(t.id, term.id)]
        if narrower:
            term_id = narrower[0].id
    flags = [bool(term_id) and kb.is_a(term_id, p) for p in populations]  # type: ignore[arg-type]
    return (code_key, agent.lower() if agent else "", term_id, *flags)
