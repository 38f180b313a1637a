"""Class expressions: a small algebra over OWL classes and decimal facets, simplified, written as OWL 2 RDF or
Manchester-like text; and order-preserving decimal representatives of exact values."""


from __future__ import annotations

import itertools
import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Iterable, Mapping, Sequence, Union

import rdflib
from rdflib import OWL, RDF, RDFS, BNode, Literal, URIRef
from rdflib.collection import Collection

from ..knowledge import MKG

__all__ = ["NS", "Expr", "Interval", "THING", "NOTHING", "representative"]



#: Namespace of the generated classes, properties and patient individuals.
NS = MKG + "owl/"

# XML Schema terms as plain URIRefs (rdflib's closed XSD namespace object warns under doctest collection)
_XSD = "http://www.w3.org/2001/XMLSchema#"
_DECIMAL, _NON_NEGATIVE_INTEGER = URIRef(_XSD + "decimal"), URIRef(_XSD + "nonNegativeInteger")
_MIN_INCLUSIVE, _MIN_EXCLUSIVE = URIRef(_XSD + "minInclusive"), URIRef(_XSD + "minExclusive")
_MAX_INCLUSIVE, _MAX_EXCLUSIVE = URIRef(_XSD + "maxInclusive"), URIRef(_XSD + "maxExclusive")

MET, NOT_MET, MISSING = "met", "not_met", "missing"
_COUNTING = ("all", "any", "at-least")
_OUT_OF_REACH = ("linear", "ratio")
_MAX_DIGITS = 15  # decimal digits that survive owlready2's float round trip
#: Batches up to this size are encoded as individuals by :func:`classify`, larger ones as record classes.
INDIVIDUALS_UP_TO = 4


# ---------------------------------------------------------------------------
# Class expressions: a small algebra, simplified, rendered to RDF or Manchester

# (low, high, low_inclusive, high_inclusive); None is an unbounded end.
Interval = tuple[Union[Fraction, None], Union[Fraction, None], bool, bool]
ANY_VALUE: Interval = (None, None, False, False)

Expr = tuple  # ("class", iri) | ("not", e) | ("and", es) | ("or", es) | ("some", p, interval) | ("value", p, x)
#             | ("has", p, class iri) | ("max0", p) | ("thing",) | ("nothing",)
THING: Expr = ("thing",)
NOTHING: Expr = ("nothing",)


def _cls(iri: str) -> Expr:
    return ("class", iri)


def _not(e: Expr) -> Expr:
    if e == THING:
        return NOTHING
    if e == NOTHING:
        return THING
    if e[0] == "not":
        return e[1]
    return ("not", e)


def _members(e: Expr, op: str) -> frozenset:
    return frozenset(e[1]) if e[0] == op else frozenset([e])


def _junction(op: str, parts: Iterable[Expr]) -> Expr:
    """and / or, flattened, deduplicated, with absorption (x or (x and y) = x)."""
    unit, zero = (THING, NOTHING) if op == "and" else (NOTHING, THING)
    dual = "or" if op == "and" else "and"
    flat: list[Expr] = []
    for part in parts:
        if part == zero:
            return zero
        if part == unit:
            continue
        flat.extend(part[1] if part[0] == op else [part])
    unique = sorted(set(flat), key=repr)
    sets = {p: _members(p, dual) for p in unique}
    kept = [p for p in unique if not any(q != p and sets[q] < sets[p] for q in unique)]
    if not kept:
        return unit
    if len(kept) == 1:
        return kept[0]
    return (op, tuple(kept))


def _and(*parts: Expr) -> Expr:
    return _junction("and", parts)


def _or(*parts: Expr) -> Expr:
    return _junction("or", parts)


def _at_least(classes: Sequence[Expr], k: int) -> Expr:
    """At least ``k`` of ``classes`` hold: the union over k-subsets of their intersection."""
    if k <= 0:
        return THING
    if k > len(classes):
        return NOTHING
    return _or(*(_and(*combo) for combo in itertools.combinations(classes, k)))


def _region(comparator: str, threshold: Fraction) -> Interval:
    return {">": (threshold, None, False, False), ">=": (threshold, None, True, False),
            "<": (None, threshold, False, False), "<=": (None, threshold, False, True)}[comparator]


_COMPLEMENT = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def _intersect(a: Interval, b: Interval) -> Interval | None:
    """The intersection of two intervals, None when empty."""
    low, low_inc = a[0], a[2]
    if b[0] is not None and (low is None or b[0] > low or (b[0] == low and not b[2])):
        low, low_inc = b[0], b[2]
    high, high_inc = a[1], a[3]
    if b[1] is not None and (high is None or b[1] < high or (b[1] == high and not b[3])):
        high, high_inc = b[1], b[3]
    if low is not None and high is not None and (low > high or (low == high and not (low_inc and high_inc))):
        return None
    return (low, high, low_inc, high_inc)


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping or touching intervals."""
    def start(i: Interval) -> tuple:
        return (i[0] is not None, i[0] if i[0] is not None else 0, not i[2])
    merged: list[Interval] = []
    for cur in sorted(intervals, key=start):
        if merged:
            last = merged[-1]
            touches = last[1] is None or cur[0] is None or cur[0] < last[1] or (
                cur[0] == last[1] and (last[3] or cur[2]))
            if touches:
                if last[1] is None or (cur[1] is not None and (cur[1] < last[1] or (cur[1] == last[1] and last[3]))):
                    continue  # cur inside last
                merged[-1] = (last[0], cur[1], last[2], cur[3])
                continue
        merged.append(cur)
    return merged


def _some(prop: str, intervals: Iterable[Interval]) -> Expr:
    return _or(*(("some", prop, i) for i in _union(intervals)))


def _decimal_text(x: Fraction) -> str | None:
    """The exact decimal spelling of ``x``, or None if it does not terminate."""
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return None
    with localcontext() as ctx:
        ctx.prec = 200
        text = format(Decimal(x.numerator) / Decimal(x.denominator), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _digits(text: str) -> int:
    return len(text.replace("-", "").replace(".", "").lstrip("0")) or 1


def representative(x: Fraction, cuts: Iterable[Fraction]) -> str:
    """A short decimal with the same relation (<, =, >) to every cut as ``x``.

    >>> F = Fraction
    >>> representative(F(26570, 8857), [F(3), F(3, 2), F(4)]), representative(F(3), [F(3)])  # 265.7 mg/dL in mmol/L
    ('2.9999', '3')
    >>> representative(F(30000000000000001, 10**16), [F(3), F(4)])
    '3.1'
    """
    cuts = sorted(set(cuts))
    text = _decimal_text(x)
    if text is not None and (_digits(text) <= _MAX_DIGITS or x in cuts):
        return text
    low = max((c for c in cuts if c < x), default=None)
    high = min((c for c in cuts if c > x), default=None)

    def inside(g: Fraction) -> bool:
        return (low is None or g > low) and (high is None or g < high)

    for k in range(0, 60):  # x rounded to the fewest decimals that keep it in its gap ...
        step = Fraction(1, 10 ** k)
        nearest = round(x / step) * step
        text = _decimal_text(nearest)
        if text is not None and _digits(text) > _MAX_DIGITS:
            break
        if inside(nearest):
            return text  # type: ignore[return-value]
    for k in range(0, 60):  # ... or, when the gap is too close to x for that, any short decimal in the gap
        step = Fraction(1, 10 ** k)
        candidates = [g for g in (math.floor(x / step) * step, math.ceil(x / step) * step) if inside(g)]
        if candidates:
            return _decimal_text(min(candidates, key=lambda g: (abs(g - x), g)))  # type: ignore[return-value]
    raise ValueError(f"no decimal representative for {x}")  # unreachable: x lies strictly inside



# ---------------------------------------------------------------------------
# RDF


class _Writer:
    """Writes class expressions as OWL 2 RDF (fresh blank nodes for every use).

    Every number is written as a short decimal: a facet value as itself, a
    patient's value or censored bound as its representative (see
    :func:`representative`) with respect to the facet values on its property.
    """

    def __init__(self, graph: rdflib.Graph, cuts: Mapping[str, set[Fraction]] | None = None) -> None:
        self.g = graph
        self.cuts = cuts or {}

    def number(self, prop: str, x: Fraction) -> Literal:
        return Literal(representative(x, self.cuts.get(prop, ())), datatype=_DECIMAL)

    def restriction(self, prop: str) -> BNode:
        node = BNode()
        self.g.add((node, RDF.type, OWL.Restriction))
        self.g.add((node, OWL.onProperty, URIRef(prop)))
        return node

    def expr(self, e: Expr) -> rdflib.term.Node:
        g = self.g
        tag = e[0]
        if tag == "class":
            return URIRef(e[1])
        if tag == "thing":
            return OWL.Thing
        if tag == "nothing":
            return OWL.Nothing
        if tag == "not":
            node = BNode()
            g.add((node, RDF.type, OWL.Class))
            g.add((node, OWL.complementOf, self.expr(e[1])))
        elif tag in ("and", "or"):
            node = BNode()
            g.add((node, RDF.type, OWL.Class))
            g.add((node, OWL.intersectionOf if tag == "and" else OWL.unionOf, self.list([self.expr(x) for x in e[1]])))
        elif tag == "some":
            node = self.restriction(e[1])
            g.add((node, OWL.someValuesFrom, self.data_range(e[1], e[2])))
        elif tag == "value":
            node = self.restriction(e[1])
            g.add((node, OWL.hasValue, self.number(e[1], e[2])))
        elif tag == "has":
            node = self.restriction(e[1])
            g.add((node, OWL.someValuesFrom, URIRef(e[2])))
        elif tag == "max0":
            node = self.restriction(e[1])
            g.add((node, OWL.maxCardinality, Literal(0, datatype=_NON_NEGATIVE_INTEGER)))
        else:
            raise ValueError(f"unknown expression {e!r}")
        return node

    def list(self, nodes: list) -> BNode:
        head = BNode()
        Collection(self.g, head, nodes)
        return head

    def data_range(self, prop: str, interval: Interval) -> rdflib.term.Node:
        low, high, low_inc, high_inc = interval
        if low is None and high is None:
            return _DECIMAL
        facets = []
        for bound, facet in ((low, _MIN_INCLUSIVE if low_inc else _MIN_EXCLUSIVE),
                             (high, _MAX_INCLUSIVE if high_inc else _MAX_EXCLUSIVE)):
            if bound is not None:
                f = BNode()
                self.g.add((f, facet, self.number(prop, bound)))
                facets.append(f)
        node = BNode()
        self.g.add((node, RDF.type, RDFS.Datatype))
        self.g.add((node, OWL.onDatatype, _DECIMAL))
        self.g.add((node, OWL.withRestrictions, self.list(facets)))
        return node




def _manchester(e: Expr, top: bool = True) -> str:
    tag = e[0]

    def short(iri: str) -> str:
        return iri[len(NS):] if iri.startswith(NS) else iri

    if tag == "class":
        return short(e[1])
    if tag in ("thing", "nothing"):
        return {"thing": "Thing", "nothing": "Nothing"}[tag]
    if tag == "not":
        return "not " + _manchester(e[1], False)
    if tag in ("and", "or"):
        text = f" {tag} ".join(_manchester(x, False) for x in e[1])
        return text if top else f"({text})"
    if tag == "some":
        low, high, low_inc, high_inc = e[2]
        facets = []
        if low is not None:
            facets.append(f"{'>=' if low_inc else '>'} {_decimal_text(low)}")
        if high is not None:
            facets.append(f"{'<=' if high_inc else '<'} {_decimal_text(high)}")
        return f"{short(e[1])} some decimal" + (f"[{', '.join(facets)}]" if facets else "")
    if tag == "value":
        return f"{short(e[1])} value {_decimal_text(e[2]) or e[2]}"
    if tag == "has":
        return f"{short(e[1])} some <{e[2]}>"
    if tag == "max0":
        return f"{short(e[1])} max 0"
    raise ValueError(e)


