"""Ontology QA (``mas-kg check``): what must hold for the ontology to be usable.

1. every file parses (rdflib) and the whole loads in owlready2 and is
   consistent under HermiT;
2. every class of ours has a label, a definition and a definition source;
3. every causal edge has an owl:Axiom with at least one well-formed source
   (seed sections are checked against the seed documents when available);
4. every criterion threshold has a comparator, a threshold and a unit that can
   be compared with its analyte; every criteria set has a citation and a source;
5. every lab test's canonical unit matches its quantity kind;
6. no reference to an undeclared term of ours; short names are unique;
7. the ranking knowledge is well formed and every lab signature a candidate
   predicts is a signed path of the causal graph (``kg.check_rules``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import TextIO

import rdflib
from rdflib import OWL, RDF, RDFS, Literal, URIRef
from rdflib.namespace import SKOS

from .compile import BIOLINK, DEFINITION, DEFINITION_SOURCE, M, OIO, _criteria, _lab_tests, _terms, read_graph
from .check_rules import ranking_problems
from .errors import OntologyError
from .knowledge import MKG, compact, expand, ontology_files
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

    from .owl import loaded_world

    try:
        with loaded_world(graph) as (world, onto):
            try:
                with onto:
                    owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
            except owlready2.OwlReadyInconsistentOntologyError:
                return ["HermiT: the ontology is inconsistent"]
            except Exception as error:
                return [f"HermiT failed: {error}".splitlines()[0]]
            return [f"HermiT: unsatisfiable class {c}" for c in world.inconsistent_classes()]
    except Exception as error:  # owlready2 raises assorted parser errors on load
        return [f"owlready2 cannot load the ontology: {error}".splitlines()[0]]


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

    problems += _criteria_problems(graph, kinds)
    problems += ranking_problems(graph)
    for node in graph.subjects(RDF.type, M.EvidenceRule):
        for source in graph.objects(node, OIO.source):
            problems += _check_source(str(source), f"evidence rule {compact(str(node))}", headings, known_seeds)
    for node in graph.subjects(RDF.type, M.AlertRule):
        for source in graph.objects(node, OIO.source):
            problems += _check_source(str(source), f"alert {compact(str(node))}", headings, known_seeds)

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


_COMBINATIONS = {"all", "any", "at-least", "count-points", "sum", "linear", "ratio"}


def _criteria_problems(graph: rdflib.Graph, kinds: dict) -> list[str]:
    """Every criteria set is complete and every item is evaluable: operators, units, parts, points."""
    problems: list[str] = []
    terms = _terms(graph)
    tests = _lab_tests(graph, terms)
    seen_ids: dict[str, str] = {}
    for node in graph.subjects(M.criterionId, None):
        key = str(graph.value(node, M.criterionId))
        if key in seen_ids and seen_ids[key] != str(node):
            problems.append(f"criterion id {key!r} used twice")
        seen_ids[key] = str(node)
    try:
        sets = _criteria(graph)
    except (ValueError, TypeError, ArithmeticError) as error:  # e.g. a band without a threshold
        return problems + [f"criteria cannot be compiled: {error}"]
    for cset in sets:
        name = cset.id
        if not cset.citation:
            problems.append(f"criteria {name}: no citation")
        if not cset.sources:
            problems.append(f"criteria {name}: no source")
        if not cset.rule or cset.rule not in cset.items:
            problems.append(f"criteria {name}: no rule")
            continue
        for scored in cset.scored_items:
            if scored not in cset.items:
                problems.append(f"criteria {name}: scored item {scored} is not part of the rule")
        for population in cset.population:
            if population not in terms:
                problems.append(f"criteria {name}: population {population} is not a term")
        for x in (cset.sensitivity, cset.specificity):
            if x is not None and not 0 <= x <= 1:
                problems.append(f"criteria {name}: sensitivity/specificity {x} outside 0..1")
        table = cset.probability_table
        if any(b[0] <= a[0] or b[1] < a[1] or not 0 <= b[1] <= 1 for a, b in zip(table, table[1:])):
            problems.append(f"criteria {name}: probability table is not increasing within 0..1")
        for default in cset.pretest_defaults:
            if not 0 < default.probability < 1 or not _SOURCE.match(default.source or ""):
                problems.append(f"criteria {name}: pre-test default needs a probability in (0, 1) and a source")
        for item in cset.items.values():
            problems += [f"criterion item {item.id}: {p}" for p in _item_problems(item, cset, terms, tests, kinds)]
    return problems


def _item_problems(item, cset, terms: dict, tests: dict, kinds: dict) -> list[str]:
    problems = []
    comparators = [item.comparator] if item.comparator else []
    comparators += [b.comparator for b in item.bands]
    if item.measured_rule is not None:
        comparators.append(item.measured_rule.comparator)
        if item.measured_rule.comparator not in (">", ">="):  # the sign's value rules are lower bounds (fever)
            problems.append("a measured rule must be a lower bound (> or >=)")
    problems += [f"comparator {c!r} is not one of < <= > >=" for c in comparators if c not in _COMPARATORS]
    if item.comparator and item.threshold is None:
        problems.append("comparator without a threshold")
    kind = item.combination
    if kind is not None:
        if kind not in _COMBINATIONS:
            problems.append(f"unknown combination {kind!r}")
        if kind == "ratio" and not (item.numerator in cset.items and item.denominator in cset.items):
            problems.append("a ratio needs a numerator and a denominator")
        elif kind != "ratio" and not item.parts:
            problems.append("a compound item without parts")
        if kind == "at-least" and item.min_count is None:
            problems.append("at-least without mkg:minCount")
        if kind == "count-points" and not item.bands:
            problems.append("count-points without bands")
        if kind in {"sum", "linear", "ratio"} and (item.comparator is None or item.threshold is None):
            problems.append(f"a {kind} needs a comparator and a threshold")
        if kind == "sum" and item.comparator not in (None, ">", ">="):  # scores are "at least the cut-off"
            problems.append("a sum's cut-off must be > or >=")
        if kind == "linear" and any(cset.items[p].coefficient is None for p in item.parts):
            problems.append("every operand of a linear formula needs a coefficient")
        if kind == "sum" and any(not (cset.items[p].is_points or cset.items[p].combination == "count-points")
                                 for p in item.parts):
            problems.append("every part of a sum needs points")
    elif item.finding is not None:
        if terms.get(item.finding) is None or terms[item.finding].kind != "ClinicalSign":
            problems.append(f"finding {item.finding} is not a clinical sign")
        if item.comparator and item.unit != (terms.get(item.finding) and terms[item.finding].accepts_value_unit):
            problems.append(f"size rule in {item.unit}, but {item.finding} takes values in another unit")
    elif item.attribute is not None:
        if item.attribute != "age" or item.unit != "a" or not item.bands:
            problems.append("the only attribute is age, in unit a, with bands")
    elif item.analyte is not None:
        test = tests.get(item.analyte)
        if test is None:
            problems.append(f"analyte {item.analyte} is not a lab test")
        elif item.unit is None:
            problems.append("no unit")
        else:
            thresholds = [t for t in [item.threshold] + [b.threshold for b in item.bands] if t is not None]
            for threshold in thresholds or [Fraction(1)]:
                try:
                    convert(threshold, item.unit, test.canonical_unit, analyte_kind=kinds.get(URIRef(expand(test.id))),
                            molar=test.molar)
                except UnitError as error:
                    problems.append(f"unit {item.unit} cannot be compared with {item.analyte}: {error}")
                    break
    else:
        problems.append("neither parts, finding, attribute nor analyte")
    return problems

