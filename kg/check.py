"""Ontology QA (``mas-kg check``): what must hold for the ontology to be usable.

1. every file parses (rdflib) and the whole loads in owlready2 and is
   consistent under HermiT;
2. every class of ours has a label, a definition and a definition source;
3. every causal edge has an owl:Axiom with at least one well-formed source
   (seed sections are checked against the seed documents when available);
4. every criterion threshold has a comparator, a threshold and a unit that can
   be compared with its analyte; every criteria set has a citation and a source;
5. every lab test's canonical unit matches its quantity kind;
6. no reference to an undeclared term of ours; short names are unique.
"""

from __future__ import annotations

import os
import re
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TextIO

import rdflib
from rdflib import OWL, RDF, RDFS, Literal, URIRef
from rdflib.namespace import SKOS

from .compile import BIOLINK, DEFINITION, DEFINITION_SOURCE, M, OIO, _lab_tests, _terms, read_graph
from .errors import OntologyError
from .knowledge import MKG, compact, ontology_files
from .units import UnitError, convert, quantity_kind

__all__ = ["run_checks"]

_SOURCE = re.compile(r"^(seed:[0-9a-f_]+(#.+)?|doi:10\.\S+|PMID:\d+|url:https?://\S+|ref:.+)$")
_COMPARATORS = {"<", "<=", ">", ">="}


def _seed_headings(seeds: Path | None) -> dict[str, set[str]] | None:
    if seeds is None:
        default = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
        seeds = default if default.is_dir() else None
    if seeds is None or not seeds.is_dir():
        return None
    headings = {}
    for path in seeds.glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        headings[path.stem] = {m.group(1).strip() for m in re.finditer(r"^#+\s*(.+)$", text, re.M)}
    return headings


def _check_source(source: str, where: str, seeds: dict[str, set[str]] | None, known: set[str]) -> list[str]:
    if not _SOURCE.match(source):
        return [f"{where}: malformed source {source!r}"]
    if source.startswith("seed:"):
        stem, _, section = source[5:].partition("#")
        if stem not in known:
            return [f"{where}: unknown seed document {stem!r}"]
        if seeds is not None and section and section not in seeds.get(stem, set()):
            return [f"{where}: seed {stem} has no section {section!r}"]
    return []


def _reasoner(graph: rdflib.Graph) -> list[str]:
    import owlready2

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mas-kg.nt")
        graph.serialize(path, format="nt", encoding="utf-8")
        world = owlready2.World()
        try:
            onto = world.get_ontology("file://" + path).load()
        except Exception as error:  # owlready2 raises assorted parser errors
            return [f"owlready2 cannot load the ontology: {error}".splitlines()[0]]
        try:
            with onto:
                owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        except owlready2.OwlReadyInconsistentOntologyError:
            return ["HermiT: the ontology is inconsistent"]
        except Exception as error:
            return [f"HermiT failed: {error}".splitlines()[0]]
        unsatisfiable = [str(c) for c in world.inconsistent_classes()]
        return [f"HermiT: unsatisfiable class {c}" for c in unsatisfiable]


def run_checks(directory: Path | None = None, *, reasoner: bool = True, seeds: Path | None = None,
               log: TextIO | None = None) -> list[str]:
    """Run every check; return the problems found (empty when the ontology passes)."""
    try:
        files = ontology_files(directory)
        graph = read_graph(files)
    except OntologyError as error:
        return [f"parse: {error}"]
    problems: list[str] = []
    headings = _seed_headings(seeds)
    known_seeds = {str(n) for s in graph.subjects(RDF.type, M.SeedDocument) for n in graph.objects(s, SKOS.notation)}
    if log and headings is None:
        log.write("mas-kg check: seed documents not found; seed sections are not verified\n")

    declared = set(graph.subjects(RDF.type, None))
    ours = lambda node: isinstance(node, URIRef) and str(node).startswith(MKG)  # noqa: E731
    for cls in sorted(graph.subjects(RDF.type, OWL.Class)):
        if not ours(cls):
            continue
        name = compact(str(cls))
        if not graph.value(cls, RDFS.label):
            problems.append(f"{name}: no rdfs:label")
        if not graph.value(cls, DEFINITION):
            problems.append(f"{name}: no definition (IAO:0000115)")
        source = graph.value(cls, DEFINITION_SOURCE)
        if not source:
            problems.append(f"{name}: no definition source (IAO:0000119)")
        else:
            problems += _check_source(str(source), f"{name} definition", headings, known_seeds)
    for s, p, o in graph:
        if ours(o) and o not in declared:
            problems.append(f"{compact(str(s))} {compact(str(p))}: refers to undeclared {compact(str(o))}")

    # causal edges and their provenance
    axioms = {}
    for axiom in graph.subjects(RDF.type, OWL.Axiom):
        key = (graph.value(axiom, OWL.annotatedSource), graph.value(axiom, OWL.annotatedProperty),
               graph.value(axiom, OWL.annotatedTarget))
        axioms[key] = axiom
    causal = set(graph.subjects(M.isCausal, Literal(True)))
    for relation in causal:
        if graph.value(relation, M.effectSign) is None:
            problems.append(f"{compact(str(relation))}: causal relation without mkg:effectSign")
        for s, o in graph.subject_objects(relation):
            name = f"edge {compact(str(s))} {compact(str(relation))} {compact(str(o))}"
            axiom = axioms.get((s, relation, o))
            sources = [str(x) for x in graph.objects(axiom, OIO.source)] if axiom is not None else []
            if not sources:
                problems.append(f"{name}: no source")
            for source in sources:
                problems += _check_source(source, name, headings, known_seeds)
            if axiom is not None and not graph.value(axiom, BIOLINK.knowledge_level):
                problems.append(f"{name}: no knowledge level")
    for (s, p, o), axiom in axioms.items():
        if (s, p, o) not in graph:
            problems.append(f"axiom annotates a missing triple {compact(str(s))} {compact(str(p))} {compact(str(o))}")

    # lab tests
    kinds: dict[URIRef, str] = {}
    for test in graph.subjects(M.canonicalUnit, None):
        unit, kind = str(graph.value(test, M.canonicalUnit)), str(graph.value(test, M.quantityKind))
        kinds[test] = kind
        try:
            actual = quantity_kind(unit, analyte_kind=kind)
            if actual != kind:
                problems.append(f"{compact(str(test))}: canonical unit {unit} is {actual}, not {kind}")
        except UnitError as error:
            problems.append(f"{compact(str(test))}: {error}")
        if graph.value(test, M.measures) is None:
            problems.append(f"{compact(str(test))}: lab test without mkg:measures")

    # criteria
    molar_factors = {test_id: test.molar for test_id, test in _lab_tests(graph, _terms(graph)).items()}
    for cset in graph.subjects(RDF.type, M.CriteriaSet):
        name = str(graph.value(cset, M.criterionId) or compact(str(cset)))
        if not graph.value(cset, M.citation):
            problems.append(f"criteria {name}: no citation")
        if not list(graph.objects(cset, OIO.source)):
            problems.append(f"criteria {name}: no source")
        if graph.value(cset, M.rule) is None:
            problems.append(f"criteria {name}: no rule")
    for item in graph.subjects(M.analyte, None):
        if (None, M.presentWhen, item) in graph:
            continue
        name = str(graph.value(item, M.criterionId) or item)
        comparator, threshold, unit = (graph.value(item, M.comparator), graph.value(item, M.threshold),
                                       graph.value(item, M.unit))
        if str(comparator) not in _COMPARATORS:
            problems.append(f"criterion item {name}: comparator {comparator!r} is not one of < <= > >=")
        if threshold is None:
            problems.append(f"criterion item {name}: no threshold")
        if unit is None:
            problems.append(f"criterion item {name}: no unit")
            continue
        test = graph.value(item, M.analyte)
        kind = kinds.get(test)
        if kind is None:
            problems.append(f"criterion item {name}: analyte {compact(str(test))} is not a lab test")
            continue
        try:
            molar = molar_factors.get(compact(str(test)))
            convert(Fraction(str(threshold)), str(unit), str(graph.value(test, M.canonicalUnit)),
                    analyte_kind=kind, molar=molar)
        except UnitError as error:
            problems.append(f"criterion item {name}: unit {unit} cannot be compared with {compact(str(test))}: {error}")

    # short names
    seen: dict[str, str] = {}
    for subject, notation in graph.subject_objects(SKOS.notation):
        key = str(notation).lower()
        if key in seen and seen[key] != str(subject):
            problems.append(f"short name {notation!r} used by {compact(seen[key])} and {compact(str(subject))}")
        seen[key] = str(subject)

    if reasoner:
        if log:
            log.write("mas-kg check: running HermiT...\n")
        problems += _reasoner(graph)
    return problems
