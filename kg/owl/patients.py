"""Patients as OWL facts: individuals (small batches) or record classes (large batches)."""


from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import rdflib
from rdflib import OWL, RDF, RDFS, URIRef

from ..findings import evaluation_time, select_at
from ..criteria import Context
from ..patient import Observation, Patient
from ..units import UnitError, convert
from .expressions import Expr, Interval, NS, _Writer, _cls, _not, _or, representative
from ..knowledge import expand
from .model import OwlModel, _local

__all__ = ["patient_facts", "encode_patients"]


# ---------------------------------------------------------------------------
# Patients as individuals


def _record(model: OwlModel, patient: Patient, at: Any = None, window: Any = None) -> Context:
    """What the criteria read from one patient: the observations in force (the engine's own selection)."""
    return Context.build(patient, model.kb, select_at(patient, evaluation_time(patient, at), window=window))


def _lab_interval(obs: Observation, model: OwlModel, analyte: str, unit: str) -> Interval | None:
    """The record as an interval in ``unit`` (decision 14); None when it cannot be expressed there."""
    test = model.kb.lab_tests[analyte]
    try:
        value = convert(obs.value, obs.unit, unit, analyte_kind=test.quantity_kind, molar=test.molar)  # type: ignore[arg-type]
        floor = None if test.quantity_kind == "temperature" else convert(
            Fraction(0), obs.unit, unit, analyte_kind=test.quantity_kind, molar=test.molar)  # type: ignore[arg-type]
    except UnitError:
        return None
    return {None: (value, value, True, True), ">": (value, None, False, False), ">=": (value, None, True, False),
            "<": (floor, value, floor is not None, False), "<=": (floor, value, floor is not None, True)}[obs.comparator]


def _gap_point(cut: Fraction, above: bool, cuts: frozenset[Fraction]) -> Fraction:
    """A short decimal strictly inside the gap between ``cut`` and its neighbouring cut (one per gap)."""
    if above:
        neighbour = min((c for c in cuts if c > cut), default=cut + 2)
    else:
        neighbour = max((c for c in cuts if c < cut), default=cut - 2)
    return Fraction(representative((cut + neighbour) / 2, cuts))


def _censored(prop: str, interval: Interval, facets: frozenset[Fraction], cuts: frozenset[Fraction]) -> Expr:
    """A censored record as a class expression whose interval bounds are never facet values.

    What a record decides depends only on which cells of the property's line
    (the facet values and the open gaps between them) it touches, so a bound
    on a facet value is moved into the adjacent gap, and an inclusive one adds
    that point as ``hasValue``: ``[0, 90)`` becomes ``[0, 45]``; ``[90, inf)``
    becomes ``= 90 or [95, inf)`` (facets at 90 and 100 on a never-negative property).  Reason:
    HermiT 1.3.8 takes degenerate intervals such as ``[90, 90)`` for
    non-empty when it builds its models, and then misses subsumptions like
    ``some p [0, 90)`` below ``some p [< 90]``; bounds strictly inside gaps
    never produce them.
    """
    low, high, low_inc, high_inc = interval
    points: list[Expr] = []
    if low is not None and low in facets:
        if low_inc:
            points.append(("value", prop, low))
        low, low_inc = _gap_point(low, True, cuts), True
    if high is not None and high in facets:
        if high_inc:
            points.append(("value", prop, high))
        high, high_inc = _gap_point(high, False, cuts), True
    if low is not None and high is not None and low > high:  # the two bounds were the two cuts of one gap
        low, high = high, low
    return _or(("some", prop, (low, high, low is not None, high is not None)), *points)  # facts: membership


def patient_facts(model: OwlModel, patient: Patient, *, at: Any = None, window: Any = None) -> list[Expr]:
    """The patient's record as OWL facts (class expressions): values, censored intervals, reports, closures."""
    record = _record(model, patient, at, window)
    facts: list[Expr] = []
    age = patient.age_years
    for (analyte, unit), prop in sorted(model.value_props.items()):
        if analyte == "age":
            if age is not None:
                days = {"a": Fraction(1), "d": Fraction("365.25")}  # age in years (a) or days (d, decision 20)
                facts.append(("value", prop, age * days[unit]))
            continue
        obs = record.labs.get(analyte)
        i = _lab_interval(obs, model, analyte, unit) if obs is not None else None
        if i is None:
            if prop in model.closed:
                facts.append(("max0", prop))  # the record is complete: no value is a fact
        elif i[0] == i[1] and i[2] and i[3]:
            facts.append(("value", prop, i[0]))
        else:
            facts.append(_censored(prop, i, model.facets.get(prop, frozenset()), model.cuts.get(prop, frozenset())))
        m = model.measured.get((analyte, unit))
        if m is not None:  # the lower end of the record, for "known to pass"
            low = None if i is None else i[0]
            exclusive = i is not None and not i[2]
            if low is not None:
                facts.append(("value", m.exclusive if exclusive else m.inclusive, low))
            if low is None or exclusive:
                facts.append(("max0", m.inclusive))
            if low is None or not exclusive:
                facts.append(("max0", m.exclusive))
    for finding, sites in sorted(model.finding_sites.items()):
        observations = record.findings.get(finding, [])
        local = _local(finding)
        keys: list[tuple[str, bool]] = [("", any(bool(o.present) for o in observations))]
        if sites:
            keys += [(f"/site/{_local(s)}", any(bool(o.present) and o.site == s for o in observations))
                     for s in sorted(sites)]
            keys.append(("/site/none", any(bool(o.present) and o.site is None for o in observations)))
        for tail, holds in keys:
            cls = _cls(f"{NS}finding/{local}/present{tail}")
            facts.append(cls if holds else _not(cls))  # the record is complete: no report is a fact
        if any(o.present is False for o in observations):
            facts.append(_cls(f"{NS}finding/{local}/absent"))
    for (finding, unit), prop in sorted(model.size_props.items()):
        sized = [o for o in record.findings.get(finding, []) if o.present and o.value is not None]
        if sized:
            o = sized[-1]
            size: Fraction = o.value if o.unit == unit else convert(o.value, o.unit, unit)  # type: ignore[arg-type]
            facts.append(("value", prop, size))
    for condition in patient.conditions:
        facts.append(("has", NS + "hasCondition", expand(condition.term)))
    return facts


def encode_patients(model: OwlModel, patients: Sequence[Patient], *, as_individuals: bool = True, at: Any = None,
                    window: Any = None, graph: rdflib.Graph | None = None) -> tuple[rdflib.Graph, list[str]]:
    """Add the patients to ``graph``; returns it and one IRI per patient.

    ``as_individuals``: each patient is an individual with its facts asserted
    (values as data property assertions, the rest as class assertions).
    Otherwise each patient is a record class ``patient/<n>`` that is a
    subclass of the intersection of the same facts (values as ``hasValue``);
    HermiT then classifies the record classes.  For an individual that is
    linked to no other individual, "p is a C" is entailed exactly when "the
    intersection of p's facts is a subclass of C" is: both encodings entail the
    same statuses.  Realising individuals costs HermiT one tableau over the
    whole ABox per possible instance (quadratic in the batch size), classifying
    record classes one small test per possible subsumer (linear).
    """
    g = graph if graph is not None else rdflib.Graph()
    w = _Writer(g, model.cuts)
    iris = []
    patient_class = URIRef(NS + "Patient")
    for n, patient in enumerate(patients):
        iri = URIRef(f"{NS}patient/{n}")
        iris.append(str(iri))
        facts = patient_facts(model, patient, at=at, window=window)
        if as_individuals:
            g.add((iri, RDF.type, OWL.NamedIndividual))
            g.add((iri, RDF.type, patient_class))
            for fact in facts:
                if fact[0] == "value":
                    g.add((iri, URIRef(fact[1]), w.number(fact[1], fact[2])))
                else:
                    g.add((iri, RDF.type, w.expr(fact)))
        else:
            g.add((iri, RDF.type, OWL.Class))
            g.add((iri, RDFS.subClassOf, patient_class))
            if facts:
                g.add((iri, RDFS.subClassOf, w.expr(("and", tuple(facts)) if len(facts) > 1 else facts[0])))
    return g, iris


