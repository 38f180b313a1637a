"""Run HermiT (owlready2) on a batch and read back, per patient, set and item, the status it entails."""


from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence

import rdflib
from rdflib import OWL

from ..patient import Patient, read_patient
from .expressions import INDIVIDUALS_UP_TO, MET, MISSING, NOT_MET, THING
from .model import OwlModel, build_model
from .patients import encode_patients

__all__ = ["INDIVIDUALS_UP_TO", "OwlVerdict", "loaded_world", "reason", "classify"]


# ---------------------------------------------------------------------------
# Reasoning


@dataclass(frozen=True, slots=True)
class OwlVerdict:
    """What HermiT entails for one patient and one criteria set.

    ``status``: met, not_met, indeterminate or not_applicable; None when the
    verdict is out of OWL's reach (a linear formula or a ratio).  ``items``:
    item id -> met / not_met / missing, None when out of reach.  ``conflicts``:
    items entailed both met and not met (never, unless the encoding is wrong).
    """

    criterion: str
    status: str | None
    items: Mapping[str, str | None]
    applicable: bool
    conflicts: tuple[str, ...] = ()


@contextmanager
def loaded_world(graph: rdflib.Graph) -> Iterator[tuple[Any, Any]]:
    """``graph`` loaded into a fresh owlready2 World (via N-Triples), closed afterwards: (world, ontology).

    A fresh World per call, because HermiT's inferences are written into the
    world in place (DESIGN.md section 6).
    """
    import owlready2

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mas-kg.nt")
        graph.serialize(path, format="nt", encoding="utf-8")
        world = owlready2.World()
        try:
            yield world, world.get_ontology("file://" + path).load()
        finally:
            world.close()


def reason(graph: rdflib.Graph, individuals: Sequence[str]) -> list[set[str]]:
    """Run HermiT (owlready2) once on ``graph`` in a fresh World; the named classes entailed per patient.

    ``individuals``: the patients' IRIs (individuals, or record classes whose
    superclasses are read; an unsatisfiable record includes ``owl:Nothing``).
    Raises ``owlready2.OwlReadyInconsistentOntologyError`` if the graph is inconsistent.
    """
    import owlready2

    with loaded_world(graph) as (world, onto):
        with onto:
            owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        supers: dict[str, set[str]] = defaultdict(set)
        for cls in world.classes():
            name = cls.iri
            for parent in cls.is_a:
                if isinstance(parent, owlready2.ThingClass):
                    supers[name].add(parent.iri)
            for other in cls.equivalent_to:
                if isinstance(other, owlready2.ThingClass):
                    supers[name].add(other.iri)
                    supers[other.iri].add(name)
        closure: dict[str, set[str]] = {}

        def up(name: str) -> set[str]:
            if name not in closure:
                seen, todo = {name}, [name]
                while todo:
                    for parent in supers.get(todo.pop(), ()):
                        if parent not in seen:
                            seen.add(parent)
                            todo.append(parent)
                closure[name] = seen
            return closure[name]

        out = []
        for iri in individuals:
            entity = world[iri]
            types: set[str] = set()
            if isinstance(entity, owlready2.ThingClass):  # a record class: its superclasses
                types = up(iri) - {iri}
                if owlready2.Nothing in entity.equivalent_to:
                    types.add(str(OWL.Nothing))
            else:
                for cls in entity.is_a:
                    if isinstance(cls, owlready2.ThingClass):
                        types |= up(cls.iri)
            out.append(types)
        return out


def _read(model: OwlModel, types: set[str], set_id: str) -> OwlVerdict:
    unsatisfiable = str(OWL.Nothing) in types  # an impossible record entails everything: all conflicts

    def holds(iri: str | None) -> bool:
        return iri is not None and (unsatisfiable or model.constants.get(iri, False) or iri in types)

    c = model.kb.criteria_set(set_id)
    items: dict[str, str | None] = {}
    conflicts = []
    for item_id, classes in model.items[set_id].items():
        if classes.met is None:
            items[item_id] = None
            continue
        met, not_met = holds(classes.met), holds(classes.not_met)
        if met and not_met:
            conflicts.append(item_id)
        items[item_id] = MET if met else NOT_MET if not_met else MISSING
    population = model.applicable[set_id]
    applicable = population == THING or population[1] in types
    root = items[c.rule]
    if not applicable:
        status: str | None = "not_applicable"
    elif root is None:
        status = None
    else:
        status = {MET: "met", NOT_MET: "not_met", MISSING: "indeterminate"}[root]
    return OwlVerdict(set_id, status, items, applicable, tuple(conflicts))


def classify(patients: Iterable[Patient | Mapping[str, Any]], model: OwlModel | None = None, *,
             as_individuals: bool | None = None, at: Any = None, window: Any = None) -> list[dict[str, OwlVerdict]]:
    """HermiT's verdicts for a batch of patients (one reasoner call), per criteria set.

    Patients are :class:`~kg.patient.Patient` objects or patient JSON dicts;
    ``at`` / ``window`` choose the observations in force as the engine does
    (``window=None``: no look-back limit).  ``as_individuals``: see
    :func:`encode_patients`; by default individuals for up to
    ``INDIVIDUALS_UP_TO`` patients, record classes for larger batches.
    """
    model = model or build_model()
    batch = [p if isinstance(p, Patient) else read_patient(dict(p), model.kb) for p in patients]
    if as_individuals is None:
        as_individuals = len(batch) <= INDIVIDUALS_UP_TO
    graph = rdflib.Graph()
    graph += model.graph
    graph, iris = encode_patients(model, batch, as_individuals=as_individuals, at=at, window=window, graph=graph)
    entailed = reason(graph, iris)
    return [{c.id: _read(model, types, c.id) for c in model.kb.criteria} for types in entailed]
