"""The generated TBox: met / not_met classes for every criteria item, built from the knowledge base."""


from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

import rdflib
from rdflib import OWL, RDF, RDFS, Literal, URIRef

from ..errors import OntologyError
from ..knowledge import Band, CriteriaSet, CriterionItem, KnowledgeBase, ThresholdRule, expand, load_knowledge
from .expressions import (
    MET, NOT_MET, ANY_VALUE, Expr, Interval, NOTHING, NS, THING, _COMPLEMENT, _COUNTING, _DECIMAL, _MAX_DIGITS,
    _OUT_OF_REACH, _Writer, _and, _at_least, _cls, _decimal_text, _digits, _intersect, _manchester, _not, _or,
    _region, _some
)

__all__ = ["OwlModel", "build_model"]


# ---------------------------------------------------------------------------
# The model: classes generated from the criteria data


@dataclass
class _ItemClasses:
    met: str | None  # class IRIs; None: out of OWL's reach
    not_met: str | None
    ge: dict[Fraction, str] = field(default_factory=dict)  # points >= level
    le: dict[Fraction, str] = field(default_factory=dict)  # points <= level (0 and every level but the top)
    levels: tuple[Fraction, ...] = ()  # positive point levels, ascending


@dataclass(frozen=True, slots=True)
class _Measured:
    """A finding's measured rule, read from the lower end of the lab record."""

    value: str  # the value property
    inclusive: str  # lower bound properties of the record
    exclusive: str


@dataclass
class OwlModel:
    """The generated TBox and what is needed to encode patients against it."""

    kb: KnowledgeBase
    graph: rdflib.Graph
    definitions: dict[str, Expr]
    items: dict[str, dict[str, _ItemClasses]]  # set id -> item id -> classes
    applicable: dict[str, Expr]  # set id -> population class (THING: no entry condition)
    value_props: dict[tuple[str, str], str]  # (analyte or "age", unit) -> property
    measured: dict[tuple[str, str], _Measured]
    closed: set[str]  # value properties closed with max 0 when the record has no value
    facets: dict[str, frozenset[Fraction]]  # property -> the facet values used on it
    cuts: dict[str, frozenset[Fraction]]  # the facet values, and 0 where values are never negative
    finding_sites: dict[str, set[str]]  # finding -> sites some item restricts to
    size_props: dict[tuple[str, str], str]  # (finding, unit) -> property
    constants: dict[str, bool]  # classes that are statically everything (True) or nothing (False)

    def describe(self, item_id: str, which: str = "met") -> str:
        """The definition of an item's met / not_met class in Manchester-like syntax."""
        set_id = next(s for s, items in self.items.items() if item_id in items)
        iri = getattr(self.items[set_id][item_id], which)
        return "out of OWL's reach" if iri is None else _manchester(self.definitions.get(iri, _cls(iri)))

    def out_of_reach(self, set_id: str) -> tuple[str, ...]:
        """The items of a set whose status OWL cannot express (formulas and what is built on them)."""
        return tuple(sorted(i for i, c in self.items[set_id].items() if c.met is None))


def _local(term_id: str) -> str:
    return term_id.split(":", 1)[1]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "_"


class _Builder:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.definitions: dict[str, Expr] = {}
        self.constants: dict[str, bool] = {}
        self.value_props: dict[tuple[str, str], str] = {}
        self.measured: dict[tuple[str, str], _Measured] = {}
        self.closed: set[str] = set()
        self.cuts: dict[str, set[Fraction]] = defaultdict(set)  # facet values per property
        self.floors: set[str] = set()  # properties whose values are never negative
        self.finding_sites: dict[str, set[str]] = defaultdict(set)
        self.findings: set[str] = set()
        self.size_props: dict[tuple[str, str], str] = {}
        self.items: dict[str, dict[str, _ItemClasses]] = {}

    # -- properties and observation classes
    def value_prop(self, analyte: str, unit: str) -> str:
        key = (analyte, unit)
        if key not in self.value_props:
            name = "age" if analyte == "age" else _local(analyte)
            iri = f"{NS}value/{name}/{_slug(unit)}"
            if iri in self.value_props.values():
                raise ValueError(f"two units of {analyte} share the property name {iri}")
            self.value_props[key] = iri
            if analyte == "age" or self.kb.lab_tests[analyte].quantity_kind != "temperature":
                self.floors.add(iri)  # values are never negative
        return self.value_props[key]

    def some(self, prop: str, *intervals: Interval) -> Expr:
        for low, high, _, _ in intervals:
            self.cuts[prop].update(x for x in (low, high) if x is not None)
        return _some(prop, intervals)

    def present(self, finding: str, site: str | None = "*") -> Expr:
        self.findings.add(finding)
        tail = "" if site == "*" else "/site/" + (_local(site) if site else "none")
        return _cls(f"{NS}finding/{_local(finding)}/present{tail}")

    def absent(self, finding: str) -> Expr:
        self.findings.add(finding)
        return _cls(f"{NS}finding/{_local(finding)}/absent")

    def accepted(self, finding: str, sites: tuple[str, ...]) -> Expr:
        if not sites:
            return self.present(finding)
        self.finding_sites[finding].update(sites)
        return _or(*(self.present(finding, s) for s in sites), self.present(finding, None))

    def measured_rule(self, rule: ThresholdRule) -> tuple[Expr, Expr, Expr]:
        """(value passes, value fails, the record is known to pass) for a finding's measured rule."""
        if rule.comparator not in (">", ">="):
            # mas-kg check refuses such data (kg.check._item_problems); say so if it slips through
            raise OntologyError(f"a measured rule must be a lower bound (> or >=), not {rule.comparator}")
        prop = self.value_prop(rule.analyte, rule.unit)
        key = (rule.analyte, rule.unit)
        if key not in self.measured:
            self.measured[key] = _Measured(prop, prop + "/record-low/inclusive", prop + "/record-low/exclusive")
        m = self.measured[key]
        t = rule.threshold
        passes = self.some(prop, _region(rule.comparator, t))
        fails = self.some(prop, _region(_COMPLEMENT[rule.comparator], t))
        # [x, inf) passes "> t" iff x > t; (x, inf) passes iff x >= t; both pass ">= t" iff x >= t
        known = _or(self.some(m.inclusive, _region(rule.comparator, t)), self.some(m.exclusive, _region(">=", t)))
        return passes, fails, known

    def finding_status(self, finding: str, sites: tuple[str, ...], rule: ThresholdRule | None) -> tuple[Expr, Expr]:
        """(met, not met) of a finding reported OR measured (decision 16)."""
        accepted = self.accepted(finding, sites)
        if rule is None:
            test = self.kb.test_with_high_sign(finding)
            rule = test.high_rule if test is not None else None
        if rule is None:
            return accepted, _and(self.absent(finding), _not(accepted))
        passes, fails, known = self.measured_rule(rule)
        met = _or(accepted, passes)
        not_met = _and(_or(self.absent(finding), fails), _not(accepted), _not(known))
        return met, not_met

    # -- named classes
    def define(self, iri: str, expr: Expr) -> str:
        self.definitions[iri] = expr
        if expr in (THING, NOTHING):
            self.constants[iri] = expr == THING
        return iri

    def ref(self, iri: str) -> Expr:
        """A reference to a named class (its constant value when it is everything or nothing)."""
        if iri in self.constants:
            return THING if self.constants[iri] else NOTHING
        return _cls(iri)

    # -- items
    def build_set(self, c: CriteriaSet) -> None:
        self.items[c.id] = {}
        self.item(c.rule, c)
        for item_id in c.items:  # items not reachable from the rule (none today)
            self.item(item_id, c)

    def item(self, item_id: str, c: CriteriaSet) -> _ItemClasses:
        done = self.items[c.id]
        if item_id in done:
            return done[item_id]
        item = c.items[item_id]
        base = f"{NS}item/{item.id}/"
        kind = item.combination
        if kind in _OUT_OF_REACH:
            for part in item.parts or (item.numerator, item.denominator):
                self.item(part, c)  # type: ignore[arg-type]
            result = _ItemClasses(None, None)
        elif kind in _COUNTING:
            parts = [self.item(p, c) for p in item.parts]
            if any(p.met is None for p in parts):
                result = _ItemClasses(None, None)
            else:
                need = {"all": len(parts), "any": 1}.get(kind, item.min_count or 0)
                met = _at_least([self.ref(p.met) for p in parts], need)  # type: ignore[arg-type]
                not_met = _at_least([self.ref(p.not_met) for p in parts], len(parts) - need + 1)  # type: ignore[arg-type]
                result = _ItemClasses(self.define(base + MET, met), self.define(base + NOT_MET, not_met))
        elif kind == "count-points":
            result = self.count_points(item, [self.item(p, c) for p in item.parts], base)
        elif kind == "sum":
            result = self.sum(item, [self.item(p, c) for p in item.parts], base)
        elif item.finding:
            result = self.finding_item(item, base)
        elif item.bands:
            result = self.banded(item, base)
        elif item.analyte and item.comparator:
            result = self.threshold_item(item, base)
        elif item.analyte:  # a formula operand: met when a value is present (decision 7)
            prop = self.value_prop(item.analyte, item.unit)  # type: ignore[arg-type]
            result = _ItemClasses(self.define(base + MET, self.some(prop, ANY_VALUE)), self.define(base + NOT_MET, NOTHING))
        else:
            raise ValueError(f"criterion item {item.id} has no parts, analyte, attribute or finding")
        done[item_id] = result
        return result

    def threshold_item(self, item: CriterionItem, base: str) -> _ItemClasses:
        prop = self.value_prop(item.analyte, item.unit)  # type: ignore[arg-type]
        cmp, t = item.comparator, item.threshold
        passes = self.some(prop, _region(cmp, t))  # type: ignore[arg-type]
        fails = self.some(prop, _region(_COMPLEMENT[cmp], t))  # type: ignore[index, arg-type]
        if item.age_threshold is not None:
            max_days, t_infant = item.age_threshold
            days = self.value_prop("age", "d")
            infant, older = self.some(days, _region("<", max_days)), self.some(days, _region(">=", max_days))
            passes_infant = self.some(prop, _region(cmp, t_infant))  # type: ignore[arg-type]
            fails_infant = self.some(prop, _region(_COMPLEMENT[cmp], t_infant))  # type: ignore[index]
            opposite = _COMPLEMENT[cmp]  # type: ignore[index]
            both = _intersect(_region(cmp, t), _region(cmp, t_infant))  # type: ignore[arg-type]
            neither = _intersect(_region(opposite, t), _region(opposite, t_infant))  # type: ignore[arg-type]
            both_pass = self.some(prop, *([both] if both else []))
            both_fail = self.some(prop, *([neither] if neither else []))
            passes = _or(_and(infant, passes_infant), _and(older, passes), both_pass)
            fails = _or(_and(infant, fails_infant), _and(older, fails), both_fail)
        return _ItemClasses(self.define(base + MET, passes), self.define(base + NOT_MET, fails))

    def finding_item(self, item: CriterionItem, base: str) -> _ItemClasses:
        finding = item.finding
        met, not_met = self.finding_status(finding, item.sites, item.measured_rule)  # type: ignore[arg-type]
        if item.comparator is not None:  # a size rule, e.g. >= 3 cm below the costal arch
            unit: str = item.unit  # type: ignore[assignment]
            size = self.size_props.setdefault((finding, unit), f"{NS}size/{_local(finding)}/{_slug(unit)}")
            self.floors.add(size)
            size_ok = self.some(size, _region(item.comparator, item.threshold))  # type: ignore[arg-type]
            size_bad = self.some(size, _region(_COMPLEMENT[item.comparator], item.threshold))  # type: ignore[arg-type]
            met, not_met = _and(met, size_ok), _or(_and(met, size_bad), not_met)
        result = _ItemClasses(self.define(base + MET, met), self.define(base + NOT_MET, not_met))
        if item.points is not None:
            result.levels = (item.points,)
            result.ge = {item.points: result.met}  # type: ignore[dict-item]
            result.le = {Fraction(0): result.not_met}  # type: ignore[dict-item]
        return result

    def _points_classes(self, base: str, levels: list[Fraction], ge: Mapping[Fraction, Expr],
                        le: Mapping[Fraction, Expr]) -> _ItemClasses:
        """Name the "points >= v" / "points <= u" classes; met = >= lowest level, not met = <= 0."""
        levels = sorted(v for v in set(levels) if v > 0)
        if not levels:
            return _ItemClasses(self.define(base + MET, NOTHING), self.define(base + NOT_MET, THING))
        result = _ItemClasses(None, None, levels=tuple(levels))
        for v in levels:
            iri = base + MET if v == levels[0] else f"{base}points-ge-{_decimal_text(v)}"
            result.ge[v] = self.define(iri, ge[v])
        for u in [Fraction(0)] + levels[:-1]:
            iri = base + NOT_MET if u == 0 else f"{base}points-le-{_decimal_text(u)}"
            result.le[u] = self.define(iri, le[u])
        result.met, result.not_met = result.ge[levels[0]], result.le[Fraction(0)]
        return result

    def banded(self, item: CriterionItem, base: str) -> _ItemClasses:
        if item.attribute is not None:
            if item.attribute != "age":
                raise ValueError(f"unknown attribute {item.attribute!r}")
            prop = self.value_prop("age", item.unit or "a")
        else:
            prop = self.value_prop(item.analyte, item.unit)  # type: ignore[arg-type]
        levels = sorted({b.points for b in item.bands if b.points > 0})
        ge = {v: self.some(prop, *[_region(b.comparator, b.threshold) for b in item.bands if b.points >= v]) for v in levels}
        le = {}
        for u in [Fraction(0)] + levels[:-1]:
            region: Interval | None = ANY_VALUE
            for b in item.bands:
                if b.points > u and region is not None:
                    region = _intersect(region, _region(_COMPLEMENT[b.comparator], b.threshold))
            le[u] = self.some(prop, *([region] if region is not None else []))
            if item.absent_finding and item.attribute is None:  # no value and the finding reported absent: 0
                self.closed.add(prop)
                _, absent_not_met = self.finding_status(item.absent_finding, (), None)
                le[u] = _or(le[u], _and(("max0", prop), absent_not_met))
        return self._points_classes(base, levels, ge, le)

    def count_points(self, item: CriterionItem, parts: list[_ItemClasses], base: str) -> _ItemClasses:
        if any(p.met is None for p in parts):
            return _ItemClasses(None, None)
        n = len(parts)
        met = [self.ref(p.met) for p in parts]  # type: ignore[arg-type]
        not_met = [self.ref(p.not_met) for p in parts]  # type: ignore[arg-type]

        def count_bound(band: Band) -> tuple[str, int]:
            """A band on the count of met parts as "count >= k" or "count <= k"."""
            t = band.threshold
            if band.comparator in (">", ">="):
                return ">=", math.floor(t) + 1 if band.comparator == ">" else math.ceil(t)
            return "<=", math.ceil(t) - 1 if band.comparator == "<" else math.floor(t)

        def certainly(bands: list[Band]) -> Expr:
            """Some band certainly holds (the weakest of each direction suffices)."""
            at_least = [k for d, k in map(count_bound, bands) if d == ">="]
            at_most = [k for d, k in map(count_bound, bands) if d == "<="]
            return _or(_at_least(met, min(at_least)) if at_least else NOTHING,
                       _at_least(not_met, n - max(at_most)) if at_most else NOTHING)

        def certainly_not(bands: list[Band]) -> Expr:
            """Every band certainly fails (the weakest of each direction must fail)."""
            at_least = [k for d, k in map(count_bound, bands) if d == ">="]
            at_most = [k for d, k in map(count_bound, bands) if d == "<="]
            return _and(_at_least(not_met, n - min(at_least) + 1) if at_least else THING,
                        _at_least(met, max(at_most) + 1) if at_most else THING)

        levels = sorted({b.points for b in item.bands if b.points > 0})
        ge = {v: certainly([b for b in item.bands if b.points >= v]) for v in levels}
        le = {u: certainly_not([b for b in item.bands if b.points > u]) for u in [Fraction(0)] + levels[:-1]}
        return self._points_classes(base, levels, ge, le)

    def sum(self, item: CriterionItem, parts: list[_ItemClasses], base: str) -> _ItemClasses:
        if any(p.met is None for p in parts):
            return _ItemClasses(None, None)
        cmp, t = item.comparator, item.threshold
        options = [(Fraction(0),) + p.levels for p in parts]

        def reaches(total: Fraction) -> bool:
            return {">": total > t, ">=": total >= t, "<": total < t, "<=": total <= t}[cmp]  # type: ignore[index, operator]

        if cmp not in (">", ">="):
            raise OntologyError(f"criterion item {item.id}: a sum's cut-off must be > or >=, not {cmp}")
        met_terms, not_met_terms = [], []
        for choice in itertools.product(*(range(len(o)) for o in options)):
            values = [o[i] for o, i in zip(options, choice)]
            total = sum(values, Fraction(0))
            if reaches(total):  # minimal: lowering any one part by one level falls short
                if all(i == 0 or not reaches(total - o[i] + o[i - 1]) for o, i in zip(options, choice)):
                    met_terms.append(_and(*(self.ref(p.ge[v]) for p, v in zip(parts, values) if v > 0)))
            elif all(i == len(o) - 1 or reaches(total - o[i] + o[i + 1]) for o, i in zip(options, choice)):
                # maximal: raising any one part by one level reaches the cut-off
                not_met_terms.append(_and(*(self.ref(p.le[v]) for p, v, o in zip(parts, values, options) if v < o[-1])))
        return _ItemClasses(self.define(base + MET, _or(*met_terms)), self.define(base + NOT_MET, _or(*not_met_terms)))


def build_model(kb: KnowledgeBase | None = None) -> OwlModel:
    """Generate the OWL 2 DL TBox of defined classes from the knowledge base's criteria."""
    kb = kb or load_knowledge()
    b = _Builder(kb)
    applicable: dict[str, Expr] = {}
    has_condition = NS + "hasCondition"
    for c in kb.criteria:
        b.build_set(c)
        if c.population:
            applicable[c.id] = _cls(b.define(f"{NS}set/{c.id}/applicable",
                                             _or(*(("has", has_condition, expand(p)) for p in c.population))))
        else:
            applicable[c.id] = THING
        rule = b.items[c.id][c.rule]
        if rule.met is not None:  # set-level classes, for SPARQL users of the graph
            b.define(f"{NS}set/{c.id}/met", _and(applicable[c.id], b.ref(rule.met)))
            b.define(f"{NS}set/{c.id}/not_met", _and(applicable[c.id], b.ref(rule.not_met)))  # type: ignore[arg-type]
    for prop, values in b.cuts.items():
        for v in values:
            text = _decimal_text(v)
            if text is None or _digits(text) > _MAX_DIGITS:
                raise ValueError(f"facet value {v} on {prop} is not a short decimal")
    graph = _tbox_graph(b, has_condition)
    return OwlModel(kb=kb, graph=graph, definitions=b.definitions, items=b.items, applicable=applicable,
                    value_props=b.value_props, measured=b.measured, closed=b.closed,
                    facets={p: frozenset(v) for p, v in b.cuts.items()},
                    cuts={p: frozenset(b.cuts.get(p, set()) | ({Fraction(0)} if p in b.floors else set()))
                          for p in set(b.cuts) | b.floors},
                    finding_sites=dict(b.finding_sites) | {f: set() for f in b.findings if f not in b.finding_sites},
                    size_props=b.size_props, constants=b.constants)



def _tbox_graph(b: _Builder, has_condition: str) -> rdflib.Graph:
    g = rdflib.Graph()
    g.bind("owl", OWL)
    g.bind("mkgowl", NS)
    onto = URIRef(NS.rstrip("/"))
    g.add((onto, RDF.type, OWL.Ontology))
    g.add((onto, RDFS.comment, Literal("Generated by kg.owl from the mas-kg criteria: defined classes whose "
                                       "instances are the patients meeting / not meeting each criterion item.")))
    w = _Writer(g, b.cuts)
    g.add((URIRef(NS + "Patient"), RDF.type, OWL.Class))
    g.add((URIRef(has_condition), RDF.type, OWL.ObjectProperty))
    props = set(b.value_props.values()) | set(b.size_props.values())
    props |= {p for m in b.measured.values() for p in (m.inclusive, m.exclusive)}
    for prop in sorted(props):
        g.add((URIRef(prop), RDF.type, OWL.DatatypeProperty))
        g.add((URIRef(prop), RDF.type, OWL.FunctionalProperty))
        g.add((URIRef(prop), RDFS.range, _DECIMAL))
    classes = set(b.definitions)
    for finding in b.findings:
        classes.add(f"{NS}finding/{_local(finding)}/present")
        classes.add(f"{NS}finding/{_local(finding)}/absent")
        for site in b.finding_sites.get(finding, ()):
            classes.add(b.present(finding, site)[1])
        if finding in b.finding_sites:
            classes.add(b.present(finding, None)[1])
    for iri in sorted(classes):
        g.add((URIRef(iri), RDF.type, OWL.Class))
    for iri, expr in sorted(b.definitions.items()):
        if iri in b.constants and not b.constants[iri]:
            continue  # never entailed: a class without a definition has no instances by force
        g.add((URIRef(iri), OWL.equivalentClass, w.expr(expr)))
    # the condition classes and the ontology's own subClassOf axioms between them
    kb = b.kb
    todo = [t for t in kb.terms.values() if t.kind in ("Disease", "Trigger")]
    seen: set[str] = set()
    while todo:
        term = todo.pop()
        if term.id in seen:
            continue
        seen.add(term.id)
        g.add((URIRef(expand(term.id)), RDF.type, OWL.Class))
        for parent in term.parents:
            g.add((URIRef(expand(parent)), RDF.type, OWL.Class))
            g.add((URIRef(expand(term.id)), RDFS.subClassOf, URIRef(expand(parent))))
            if parent in kb.terms:
                todo.append(kb.terms[parent])
    return g


