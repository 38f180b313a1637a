"""Compile the ontology's criteria sets into SQL column expressions.

Nothing here repeats a criterion: every threshold, unit, band, coefficient,
combination rule and population comes from :class:`~kg.knowledge.CriteriaSet`
objects read from ``ontology/criteria/*.ttl``, and the expressions mirror
:mod:`kg.criteria` rule for rule (three-valued items, interval scores).

Exactness (semantics 1).  A lab value in force is held, per unit a criterion
reads it in (a *slot*), as an exact DECIMAL ``v = value_in_that_unit * D``: the
value is converted with integer factors ``A``, ``B`` (``v = raw * A + B``) and
``D`` is the least common denominator of the conversion factors met in the data
and of the thresholds compared with the slot.  Thresholds are compared as
``threshold * D``, a linear formula is summed over the common denominator of its
terms, and a ratio is compared cross-multiplied, so no division or rounding ever
decides a verdict.

Statuses are integers: 2 met, 1 missing (indeterminate), 0 not met.

>>> from kg import load_knowledge
>>> plan = SlotPlan.from_criteria(load_knowledge())
>>> plan.slot("mkg:FerritinTest", "ng/mL").unit
'ng/mL'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import lcm
from typing import Iterable

from ..knowledge import CriteriaSet, CriterionItem, KnowledgeBase, ThresholdRule
from .backend import Dialect

__all__ = ["Slot", "SlotPlan", "FindingKey", "CriteriaCompiler", "MET", "MISSING", "NOT_MET"]

MET, MISSING, NOT_MET = 2, 1, 0
STATUS_TEXT = "CASE {x} WHEN 2 THEN 'met' WHEN 0 THEN 'not_met' ELSE 'indeterminate' END"


@dataclass
class Slot:
    """A lab test read in one unit: state column ``lab{test}_v{index}``."""

    term: str
    unit: str
    test: int  # index of the lab test's state column
    index: int  # 1-based field within it
    thresholds: set[Fraction] = field(default_factory=set)
    temperature: bool = False
    denominator: int = 1  # D, fixed once the data's units are known

    @property
    def column(self) -> str:
        return f"lab{self.test}"

    @property
    def name(self) -> str:
        return f"s{self.test}_{self.index}"

    def scaled(self, value: Fraction) -> Fraction:
        return value * self.denominator


@dataclass
class SlotPlan:
    """Every (lab test, unit) the criteria read, with the thresholds compared in it."""

    slots: dict[tuple[str, str], Slot]
    tests: list[str]

    @classmethod
    def from_criteria(cls, kb: KnowledgeBase, sets: list[CriteriaSet] | None = None) -> "SlotPlan":
        """The slots of ``sets`` (default: every criteria set of ``kb``)."""
        plan = cls({}, [])
        for c in kb.criteria if sets is None else sets:
            for item in c.items.values():
                if item.analyte and item.unit:
                    thresholds = [item.threshold] if item.threshold is not None and not item.combination else []
                    thresholds += [b.threshold for b in item.bands]
                    if item.age_threshold:
                        thresholds.append(item.age_threshold[1])
                    plan.add(item.analyte, item.unit, thresholds, kb)
                rules = [item.measured_rule] if item.measured_rule else []
                for finding in (item.finding, item.absent_finding):
                    test = kb.test_with_high_sign(finding) if finding else None
                    if test is not None and test.high_rule is not None:
                        rules.append(test.high_rule)
                for rule in rules:
                    plan.add(rule.analyte, rule.unit, [rule.threshold], kb)
        return plan

    def add(self, term: str, unit: str, thresholds: Iterable[Fraction], kb: KnowledgeBase) -> None:
        if term not in self.tests:
            self.tests.append(term)
        key = (term, unit)
        if key not in self.slots:
            test = self.tests.index(term)
            index = 1 + sum(1 for s in self.slots.values() if s.term == term)
            self.slots[key] = Slot(term, unit, test, index,
                                   temperature=kb.lab_tests[term].quantity_kind == "temperature")
        self.slots[key].thresholds.update(thresholds)

    def slot(self, term: str, unit: str) -> Slot:
        return self.slots[(term, unit)]

    def of_test(self, term: str) -> list[Slot]:
        return [s for s in self.slots.values() if s.term == term]


@dataclass(frozen=True)
class FindingKey:
    """One (finding, site, gene) seen in the data: state columns ``fk{index}_*``."""

    index: int
    term: str
    site: str | None
    gene: str | None

    @property
    def column(self) -> str:
        return f"fk{self.index}"


def _literal(value: Fraction, dialect: Dialect) -> str:
    """An exact SQL literal: an integer when whole, else a DECIMAL(38,9) (finite decimals only)."""
    if value.denominator == 1:
        return f"CAST({value.numerator} AS DECIMAL(38,0))" if abs(value) >= 2**62 else str(value.numerator)
    scaled = value * 10**9
    if scaled.denominator != 1:
        raise ValueError(f"{value} is not a decimal with at most 9 places")
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled.numerator)).rjust(10, "0")
    return dialect.decimal(f"{sign}{digits[:-9]}.{digits[-9:]}")


@dataclass(frozen=True)
class Interval:
    """SQL for an interval: ends (None is unbounded) and their inclusiveness."""

    lo: str | None
    hi: str | None
    lo_inc: str
    hi_inc: str


def compare(iv: Interval, op: str, t: str) -> tuple[str, str]:
    """(every value passes, no value passes) as SQL conditions -- kg.criteria.compare_interval."""
    above = "FALSE" if iv.lo is None else f"({iv.lo} > {t} OR ({iv.lo} = {t} AND NOT {iv.lo_inc}))"
    below = "FALSE" if iv.hi is None else f"({iv.hi} < {t} OR ({iv.hi} = {t} AND NOT {iv.hi_inc}))"
    at_most = "FALSE" if iv.hi is None else f"({iv.hi} <= {t})"
    at_least = "FALSE" if iv.lo is None else f"({iv.lo} >= {t})"
    return {">": (above, at_most), ">=": (at_least, below), "<": (below, at_least), "<=": (at_most, above)}[op]


def three(true: str, false: str) -> str:
    return f"CASE WHEN {true} THEN 2 WHEN {false} THEN 0 ELSE 1 END"


class CriteriaCompiler:
    """SQL columns evaluating every criteria set over the ``state`` relation (one row per time point).

    The state has ``age`` (DECIMAL years), ``pop{i}`` (BOOLEAN: a condition
    falls under population i), per lab test the observation in force as
    ``lab{t}_cmp`` (a space when uncensored) and ``lab{t}_v{slot}``, and per
    finding key ``fk{k}_present``, ``fk{k}_size``, ``fk{k}_rn`` (file position).
    """

    def __init__(self, kb: KnowledgeBase, plan: SlotPlan, keys: list[FindingKey], populations: list[str],
                 dialect: Dialect, *, sets: list[CriteriaSet] | None = None) -> None:
        self.kb, self.plan, self.keys, self.populations, self.d = kb, plan, keys, populations, dialect
        self.sets = list(kb.criteria) if sets is None else sets  # compiled, in this order
        self.columns: dict[str, str] = {}  # column -> expression, in dependency order
        self.layer_of: dict[str, int] = {}
        self._names: dict[tuple[str, str], str] = {}
        for c in self.sets:
            self._compile_set(c)

    # -- public -------------------------------------------------------------------------------------

    def layers(self) -> list[list[tuple[str, str]]]:
        """Columns grouped so each layer reads only the state and earlier layers."""
        out: list[list[tuple[str, str]]] = []
        for name, expr in self.columns.items():
            depth = self.layer_of[name]
            while len(out) <= depth:
                out.append([])
            out[depth].append((name, expr))
        return out

    def outputs(self) -> list[tuple[str, str]]:
        """``<id>_status``, ``<id>_score``, ``<id>_score_min``, ``<id>_score_max`` for every set."""
        return [(f"{c.id}_{suffix}", self._names[(c.id, suffix)])
                for c in self.sets for suffix in ("status", "score", "score_min", "score_max")]

    # -- helpers ------------------------------------------------------------------------------------

    def _add(self, name: str, expr: str, depth: int) -> str:
        self.columns[name] = expr
        self.layer_of[name] = depth
        return name

    def _lit(self, value: Fraction) -> str:
        return _literal(value, self.d)

    def _slot_interval(self, slot: Slot) -> tuple[str, Interval]:
        """(in force and convertible, the value's interval in the slot's scaled unit).

        The ends are columns of the first layer, computed once per row however many
        thresholds read them.
        """
        cmp = f"{slot.column}_cmp"
        v = f"{slot.column}_v{slot.index}"
        lo, hi, lo_inc, hi_inc = f"{slot.name}_lo", f"{slot.name}_hi", f"{slot.column}_li", f"{slot.column}_hinc"
        if lo not in self.columns:
            floor = self._lit(slot.scaled(Fraction(-273))) if slot.temperature else "0"
            self._add(lo, f"CASE WHEN {cmp} IN ('<', '<=') THEN {floor} ELSE {v} END", 0)
            self._add(hi, f"CASE WHEN {cmp} IN ('>', '>=') THEN NULL ELSE {v} END", 0)
            self._add(lo_inc, f"({cmp} <> '>')", 0)
            self._add(hi_inc, f"({cmp} <> '<')", 0)
        return f"({v} IS NOT NULL)", Interval(lo=lo, hi=hi, lo_inc=lo_inc, hi_inc=hi_inc)

    def _rule_status(self, rule: ThresholdRule) -> str:
        slot = self.plan.slot(rule.analyte, rule.unit)
        ok, iv = self._slot_interval(slot)
        true, false = compare(iv, rule.comparator, self._lit(slot.scaled(rule.threshold)))
        return f"(CASE WHEN {ok} THEN {three(true, false)} ELSE 1 END)"

    def finding_status(self, term: str, sites: tuple[str, ...], measured: ThresholdRule | None) -> str:
        """kg.criteria.finding_status: reported OR measured, three-valued."""
        keys = [k for k in self.keys if k.term == term]
        accepted = [k for k in keys if not sites or k.site is None or k.site in sites]
        pos = " OR ".join(f"coalesce({k.column}_present, FALSE)" for k in accepted) or "FALSE"
        neg = " OR ".join(f"coalesce(NOT {k.column}_present, FALSE)" for k in keys) or "FALSE"
        base = three(f"({pos})", f"({neg})")
        if measured is None:
            test = self.kb.test_with_high_sign(term)
            measured = test.high_rule if test is not None else None
        if measured is None:
            return f"({base})"
        m = self._rule_status(measured)
        return f"(CASE WHEN ({base}) = 2 OR {m} = 2 THEN 2 WHEN ({base}) = 0 OR {m} = 0 THEN 0 ELSE 1 END)"

    def _witness_size(self, term: str) -> str:
        """The size of the latest-listed in-force present finding with a size (NULL when none)."""
        keys = [k for k in self.keys if k.term == term]
        if not keys:
            return "NULL"
        ranks = [f"(CASE WHEN coalesce({k.column}_present, FALSE) AND {k.column}_size IS NOT NULL "
                 f"THEN {k.column}_rn ELSE -1 END)" for k in keys]
        best = ranks[0] if len(ranks) == 1 else f"greatest({', '.join(ranks)})"
        picks = " ".join(f"WHEN {best} = {r} THEN {k.column}_size" for k, r in zip(keys, ranks))
        return f"(CASE WHEN {best} < 0 THEN NULL {picks} END)"

    # -- items --------------------------------------------------------------------------------------

    def _compile_set(self, c: CriteriaSet) -> None:
        depth: dict[str, int] = {}
        self._prefix = f"c{self.sets.index(c)}"

        def visit(item_id: str) -> int:
            if item_id not in depth:
                item = c.items[item_id]
                parts = list(item.parts) + [p for p in (item.numerator, item.denominator) if p]
                depth[item_id] = 1 + max((visit(p) for p in parts), default=0)
            return depth[item_id]

        visit(c.rule)
        for item_id in sorted(depth, key=lambda i: depth[i]):
            self._item(c, c.items[item_id], 3 * depth[item_id])  # room for an item's own steps
        self._set_outputs(c, depth)

    def _col(self, item: CriterionItem, suffix: str) -> str:
        return f"{self._prefix}_{item.order}_{suffix}"

    def _item(self, c: CriteriaSet, item: CriterionItem, depth: int) -> None:
        kind = item.combination
        st = self._col(item, "st")
        if kind in ("all", "any", "at-least", "count-points"):
            parts = [c.items[p] for p in item.parts]
            met = " + ".join(f"(CASE WHEN {self._col(p, 'st')} = 2 THEN 1 ELSE 0 END)" for p in parts)
            mis = " + ".join(f"(CASE WHEN {self._col(p, 'st')} = 1 THEN 1 ELSE 0 END)" for p in parts)
            m = self._add(self._col(item, "met"), met, depth)
            u = self._add(self._col(item, "mis"), mis, depth)
            if kind == "count-points":
                self._band_points(item, Interval(m, f"({m} + {u})", "TRUE", "TRUE"), depth + 1)
                return
            need = {"all": len(parts), "any": 1}.get(kind, item.min_count or 0)
            self._add(st, f"CASE WHEN {m} >= {need} THEN 2 WHEN {m} + {u} < {need} THEN 0 ELSE 1 END", depth + 1)
        elif kind in ("sum", "linear"):
            self._sum(c, item, depth)
        elif kind == "ratio":
            self._ratio(c, item, depth)
        elif item.finding:
            self._finding_item(item, depth)
        elif item.bands:
            self._banded(item, depth)
        elif item.analyte and item.comparator:
            self._threshold(item, depth)
        elif item.analyte:
            self._operand(item, depth)
        else:
            raise ValueError(f"criterion item {item.id} has no parts, analyte, attribute or finding")

    def _threshold(self, item: CriterionItem, depth: int) -> None:
        slot = self.plan.slot(item.analyte, item.unit)  # type: ignore[arg-type]
        ok, iv = self._slot_interval(slot)

        def status(threshold: Fraction) -> str:
            return three(*compare(iv, item.comparator, self._lit(slot.scaled(threshold))))  # type: ignore[arg-type]

        expr = status(item.threshold)  # type: ignore[arg-type]
        if item.age_threshold is not None:
            max_days, infant = item.age_threshold
            a, b = status(item.threshold), status(infant)  # type: ignore[arg-type]
            both = f"(CASE WHEN ({a}) = ({b}) THEN ({a}) ELSE 1 END)"  # undecided where the two disagree
            expr = (f"CASE WHEN age IS NULL THEN {both} "
                    f"WHEN age * {self._lit(Fraction('365.25'))} < {self._lit(max_days)} THEN {b} ELSE {a} END")
        self._add(self._col(item, "st"), f"CASE WHEN {ok} THEN ({expr}) ELSE 1 END", depth)

    def _finding_item(self, item: CriterionItem, depth: int) -> None:
        status = self.finding_status(item.finding, item.sites, item.measured_rule)  # type: ignore[arg-type]
        if item.comparator is not None:  # a size rule, e.g. >= 3 cm below the costal arch
            size = self._witness_size(item.finding)  # type: ignore[arg-type]
            point = Interval(size, size, "TRUE", "TRUE")
            passes = compare(point, item.comparator, self._lit(item.threshold))[0]  # type: ignore[arg-type]
            status = (f"(CASE WHEN {status} <> 2 THEN {status} WHEN {size} IS NULL THEN 1 "
                      f"WHEN {passes} THEN 2 ELSE 0 END)")
        st = self._add(self._col(item, "st"), status, depth)
        if item.points is not None:
            p = self._lit(item.points)
            self._add(self._col(item, "pl"), f"CASE WHEN {st} = 2 THEN {p} ELSE 0 END", depth + 1)
            self._add(self._col(item, "ph"), f"CASE WHEN {st} = 0 THEN 0 ELSE {p} END", depth + 1)

    def _banded(self, item: CriterionItem, depth: int) -> None:
        if item.attribute == "age":
            ok, iv = "(age IS NOT NULL)", Interval("age", "age", "TRUE", "TRUE")
            missing = Interval("0", None, "TRUE", "FALSE")
            scale = Fraction(1)
        else:
            slot = self.plan.slot(item.analyte, item.unit)  # type: ignore[arg-type]
            ok, iv = self._slot_interval(slot)
            missing = Interval(None, None, "FALSE", "FALSE")
            scale = Fraction(slot.denominator)
        low_known, high_known = self._points(item, iv, scale)
        low_missing, high_missing = self._points(item, missing, scale)
        if item.absent_finding:  # no value and the finding reported absent: below every band
            absent = f"{self.finding_status(item.absent_finding, (), None)} = 0"
            low_missing, high_missing = f"(CASE WHEN {absent} THEN 0 ELSE {low_missing} END)", \
                f"(CASE WHEN {absent} THEN 0 ELSE {high_missing} END)"
        pl = self._add(self._col(item, "pl"), f"CASE WHEN {ok} THEN {low_known} ELSE {low_missing} END", depth)
        ph = self._add(self._col(item, "ph"), f"CASE WHEN {ok} THEN {high_known} ELSE {high_missing} END", depth)
        self._add(self._col(item, "st"), f"CASE WHEN {pl} > 0 THEN 2 WHEN {ph} = 0 THEN 0 ELSE 1 END", depth + 1)

    def _points(self, item: CriterionItem, iv: Interval, scale: Fraction) -> tuple[str, str]:
        """(certain, highest possible) points of the bands -- kg.criteria._band_points."""
        lows, highs = ["0"], ["0"]
        for band in item.bands:
            true, false = compare(iv, band.comparator, self._lit(band.threshold * scale))
            p = self._lit(band.points)
            lows.append(f"(CASE WHEN {true} THEN {p} ELSE 0 END)")
            highs.append(f"(CASE WHEN {false} THEN 0 ELSE {p} END)")
        return f"greatest({', '.join(lows)})", f"greatest({', '.join(highs)})"

    def _band_points(self, item: CriterionItem, iv: Interval, depth: int) -> None:
        low, high = self._points(item, iv, Fraction(1))
        pl = self._add(self._col(item, "pl"), low, depth)
        ph = self._add(self._col(item, "ph"), high, depth)
        self._add(self._col(item, "st"), f"CASE WHEN {pl} > 0 THEN 2 WHEN {ph} = 0 THEN 0 ELSE 1 END", depth + 1)

    def _operand(self, item: CriterionItem, depth: int) -> None:
        slot = self.plan.slot(item.analyte, item.unit)  # type: ignore[arg-type]
        ok, _ = self._slot_interval(slot)
        self._add(self._col(item, "st"), f"CASE WHEN {ok} THEN 2 ELSE 1 END", depth)

    # -- formulas -----------------------------------------------------------------------------------

    def _term(self, item: CriterionItem, common: int) -> Interval:
        """A linear formula's term for ``item`` over the common denominator ``common``."""
        coefficient = item.coefficient if item.coefficient is not None else Fraction(1)
        if item.analyte:
            slot = self.plan.slot(item.analyte, item.unit)  # type: ignore[arg-type]
            ok, iv = self._slot_interval(slot)
            k = coefficient * common / slot.denominator
            assert k.denominator == 1
            kl = f"CAST({k.numerator} AS DECIMAL(18,0))"
            lo = f"(CASE WHEN {ok} THEN {iv.lo} * {kl} ELSE 0 END)"
            hi = f"(CASE WHEN {ok} THEN {iv.hi} * {kl} ELSE NULL END)"
            lo_inc, hi_inc = f"(NOT {ok} OR {iv.lo_inc})", f"({ok} AND {iv.hi_inc})"
            return Interval(lo, hi, lo_inc, hi_inc) if k >= 0 else Interval(hi, lo, hi_inc, lo_inc)
        st = self._col(item, "st")
        value = self._lit(coefficient * common)
        low, high = (value, "0") if coefficient < 0 else ("0", value)
        return Interval(f"(CASE WHEN {st} = 2 THEN {value} WHEN {st} = 0 THEN 0 ELSE {low} END)",
                        f"(CASE WHEN {st} = 2 THEN {value} WHEN {st} = 0 THEN 0 ELSE {high} END)", "TRUE", "TRUE")

    def _common(self, c: CriteriaSet, item: CriterionItem) -> int:
        dens = [item.threshold.denominator] if item.threshold is not None else []
        for p in item.parts:
            part = c.items[p]
            coefficient = part.coefficient if part.coefficient is not None else Fraction(1)
            dens.append(coefficient.denominator)
            if part.analyte:
                dens.append(self.plan.slot(part.analyte, part.unit).denominator * coefficient.denominator)  # type: ignore[arg-type]
        return lcm(*dens) if dens else 1

    def _sum(self, c: CriteriaSet, item: CriterionItem, depth: int) -> None:
        parts = [c.items[p] for p in item.parts]
        if item.combination == "sum":
            common = item.threshold.denominator if item.threshold is not None else 1  # type: ignore[union-attr]
            terms = [Interval(f"{self._col(p, 'pl')} * {common}", f"{self._col(p, 'ph')} * {common}", "TRUE", "TRUE")
                     for p in parts]
        else:
            common = self._common(c, item)
            terms = [self._term(p, common) for p in parts]
        lo = self._add(self._col(item, "lo"), " + ".join(t.lo for t in terms)
                       if all(t.lo is not None for t in terms) else "NULL", depth)
        hi = self._add(self._col(item, "hi"), " + ".join(t.hi for t in terms)
                       if all(t.hi is not None for t in terms) else "NULL", depth)
        li = self._add(self._col(item, "li"), " AND ".join(t.lo_inc for t in terms), depth)
        hinc = self._add(self._col(item, "hinc"), " AND ".join(t.hi_inc for t in terms), depth)
        total = Interval(lo, hi, li, hinc)
        true, false = compare(total, item.comparator, self._lit(item.threshold * common))  # type: ignore[operator]
        self._add(self._col(item, "st"), three(true, false), depth + 1)
        self._add(self._col(item, "den"), str(common), depth)

    def _ratio(self, c: CriteriaSet, item: CriterionItem, depth: int) -> None:
        """kg.criteria._divide, compared cross-multiplied: n/d >= t  <=>  n >= t * d (d > 0)."""
        num_slot = self.plan.slot(c.items[item.numerator].analyte, c.items[item.numerator].unit)  # type: ignore[arg-type]
        den_slot = self.plan.slot(c.items[item.denominator].analyte, c.items[item.denominator].unit)  # type: ignore[arg-type]
        n_ok, n = self._slot_interval(num_slot)
        d_ok, d = self._slot_interval(den_slot)
        # a missing operand is every non-negative value: [0, inf)
        n_lo, n_hi = f"(CASE WHEN {n_ok} THEN {n.lo} ELSE 0 END)", f"(CASE WHEN {n_ok} THEN {n.hi} END)"
        n_li, n_hinc = f"(NOT {n_ok} OR {n.lo_inc})", f"({n_ok} AND {n.hi_inc})"
        d_lo, d_hi = f"(CASE WHEN {d_ok} THEN {d.lo} ELSE 0 END)", f"(CASE WHEN {d_ok} THEN {d.hi} END)"
        d_li, d_hinc = f"(NOT {d_ok} OR {d.lo_inc})", f"({d_ok} AND {d.hi_inc})"
        # the scaled ratio n/d equals the ratio times num D / den D: compare n * q >= p * d for t' = p/q
        t = item.threshold * num_slot.denominator / den_slot.denominator  # type: ignore[operator]
        p, q = self._lit(Fraction(t.numerator)), self._lit(Fraction(t.denominator))
        infinite = f"({d_hi} IS NOT NULL AND {d_hi} = 0 AND {n_lo} > 0)"  # x/0: above every threshold
        undefined = f"({d_hi} IS NOT NULL AND {d_hi} = 0 AND NOT ({n_lo} > 0))"  # 0/0
        # low = n_lo / d_hi (0 when d_hi is unbounded); high = n_hi / d_lo (unbounded when d_lo = 0)
        low_inc = f"({d_hi} IS NOT NULL AND {n_li} AND {d_hinc})"
        high_open = f"({d_lo} = 0 OR {n_hi} IS NULL)"
        high_inc = f"({n_hinc} AND {d_li})"
        low_vs = f"(CASE WHEN {d_hi} IS NULL THEN 0 ELSE {n_lo} * {q} END)", f"(CASE WHEN {d_hi} IS NULL THEN 1 ELSE {d_hi} END) * {p}"
        high_vs = f"{n_hi} * {q}", f"{d_lo} * {p}"
        above = f"({low_vs[0]} > {low_vs[1]} OR ({low_vs[0]} = {low_vs[1]} AND NOT {low_inc}))"
        at_least = f"({low_vs[0]} >= {low_vs[1]})"
        below = f"(NOT {high_open} AND ({high_vs[0]} < {high_vs[1]} OR ({high_vs[0]} = {high_vs[1]} AND NOT {high_inc})))"
        at_most = f"(NOT {high_open} AND {high_vs[0]} <= {high_vs[1]})"
        true, false = {">": (above, at_most), ">=": (at_least, below), "<": (below, at_least),
                       "<=": (at_most, above)}[item.comparator]  # type: ignore[index]
        inf_status = 2 if item.comparator in (">", ">=") else 0
        self._add(self._col(item, "st"), f"CASE WHEN {infinite} THEN {inf_status} WHEN {undefined} THEN 1 "
                                         f"ELSE {three(true, false)} END", depth)
        factor = f"{den_slot.denominator}.0 / {num_slot.denominator}.0"
        defined = f"NOT ({infinite} OR {undefined})"
        low = f"(CASE WHEN {defined} THEN (CASE WHEN {d_hi} IS NULL THEN 0.0 " \
              f"ELSE CAST({n_lo} AS DOUBLE) / CAST({d_hi} AS DOUBLE) * {factor} END) END)"
        high = f"(CASE WHEN {defined} AND NOT {high_open} THEN CAST({n_hi} AS DOUBLE) / CAST({d_lo} AS DOUBLE) * {factor} END)"
        exact = f"(NOT {high_open} AND {d_hi} IS NOT NULL AND {low_inc} AND {high_inc} AND {n_lo} * {d_lo} = {n_hi} * {d_hi})"
        self._add(self._col(item, "dlo"), low, depth)
        self._add(self._col(item, "dhi"), high, depth)
        self._add(self._col(item, "dscore"), f"(CASE WHEN {exact} AND {defined} AND NOT {high_open} THEN {high} END)", depth)

    # -- sets ---------------------------------------------------------------------------------------

    def _set_outputs(self, c: CriteriaSet, depth: dict[str, int]) -> None:
        top = 3 * max(depth.values()) + 3
        root = c.items[c.rule]
        applicable = " OR ".join(f"pop{self.populations.index(p)}" for p in c.population) if c.population else "TRUE"
        status = STATUS_TEXT.format(x=self._col(root, "st"))
        self._names[(c.id, "status")] = self._add(f"{c.id}_status", f"CASE WHEN {applicable} THEN {status} "
                                                                    "ELSE 'not_applicable' END", top)
        scored = [c.items[i] for i in c.scored_items]
        if len(scored) > 1 or scored[0].combination in ("all", "any", "at-least"):
            met = " + ".join(self._col(i, "met") for i in scored)
            high = " + ".join(f"{self._col(i, 'met')} + {self._col(i, 'mis')}" for i in scored)
            score, low, high = (f"CAST({met} AS DOUBLE)",) * 2 + (f"CAST({high} AS DOUBLE)",)
        elif scored[0].combination == "ratio":
            item = scored[0]
            score, low, high = self._col(item, "dscore"), self._col(item, "dlo"), self._col(item, "dhi")
        else:
            item = scored[0]
            den = self._col(item, "den")
            lo, hi, li, hinc = (self._col(item, s) for s in ("lo", "hi", "li", "hinc"))
            low, high = f"CAST({lo} AS DOUBLE) / {den}", f"CAST({hi} AS DOUBLE) / {den}"
            if item.combination == "sum":
                score = low
            else:  # a formula has a value only when every operand is exact
                score = f"(CASE WHEN {lo} IS NOT NULL AND {hi} IS NOT NULL AND {lo} = {hi} AND {li} AND {hinc} THEN {low} END)"
        for suffix, expr in (("score", score), ("score_min", low), ("score_max", high)):
            self._names[(c.id, suffix)] = self._add(f"{c.id}_{suffix}", f"CAST({expr} AS DOUBLE)", top)
