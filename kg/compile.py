"""Compile the ontology's RDF into the engine's indexed form (see knowledge.py): terms, lab tests,
causal edges, criteria, and the ranking knowledge (candidates, evidence rules, indications, alerts)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import rdflib
from rdflib import OWL, RDF, RDFS, Literal, URIRef
from rdflib.namespace import SKOS

from .errors import OntologyError
from .knowledge import (
    MKG, AlertRule, Band, CandidateCategory, Effect, EvidenceRule, Indication, TrendPart, CausalEdge, CriteriaSet, CriterionItem, FrozenDict, KnowledgeBase, LabTest,
    PretestDefault, ReferenceRange, Term, ThresholdRule, compact, expand,
)
from .units import MolarFactor

__all__ = ["compile_graph", "read_graph", "alert_rules", "candidate_categories", "evidence_rules", "indications"]

M = rdflib.Namespace(MKG)
OBO = rdflib.Namespace("http://purl.obolibrary.org/obo/")
OIO = rdflib.Namespace("http://www.geneontology.org/formats/oboInOwl#")
BIOLINK = rdflib.Namespace("https://w3id.org/biolink/vocab/")
DEFINITION, DEFINITION_SOURCE = OBO.IAO_0000115, OBO.IAO_0000119
KINDS = ("CellType", "MolecularEntity", "Gene", "Mechanism", "PhysiologicalQuantity", "LabTest",
         "LabSign", "ClinicalSign", "Disease", "Trigger", "Therapy", "Anatomy")


def read_graph(files: list[Path]) -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in files:
        try:
            graph.parse(path, format="turtle")
        except Exception as error:  # rdflib raises several parser error types
            raise OntologyError(f"{path}: {error}".splitlines()[0]) from None
    return graph


def _text(graph: rdflib.Graph, node, prop) -> str:
    value = graph.value(node, prop)
    return str(value) if value is not None else ""


def _decimal(value) -> Fraction | None:
    return None if value is None else Fraction(str(value))


def _kind(graph: rdflib.Graph, cls: URIRef) -> str | None:
    seen, frontier = set(), [cls]
    # Nearest kind wins (LabSign before Phenotype, Mediator -> MolecularEntity).
    while frontier:
        nxt = []
        for node in frontier:
            for parent in graph.objects(node, RDFS.subClassOf):
                if isinstance(parent, URIRef) and parent not in seen:
                    seen.add(parent)
                    local = str(parent)[len(MKG):] if str(parent).startswith(MKG) else None
                    if local in KINDS:
                        return local
                    nxt.append(parent)
        frontier = nxt
    return None


def _ancestors(graph: rdflib.Graph, cls: URIRef) -> frozenset[str]:
    return frozenset(compact(str(a)) for a in graph.transitive_objects(cls, RDFS.subClassOf)
                     if isinstance(a, URIRef) and a != cls)


def _terms(graph: rdflib.Graph) -> dict[str, Term]:
    terms: dict[str, Term] = {}
    for cls in graph.subjects(RDF.type, OWL.Class):
        if not isinstance(cls, URIRef) or not str(cls).startswith(MKG):
            continue
        kind = _kind(graph, cls)
        if kind is None:
            continue  # upper classes and data classes (CriteriaSet, ...)
        term_id = compact(str(cls))
        names = (OIO.hasExactSynonym, SKOS.altLabel) if kind != "Therapy" else \
            (OIO.hasExactSynonym, SKOS.altLabel, OIO.hasRelatedSynonym)  # a drug of the class names it
        synonyms = sorted({str(o) for p in names for o in graph.objects(cls, p)})
        terms[term_id] = Term(
            id=term_id, label=_text(graph, cls, RDFS.label), kind=kind,
            definition=_text(graph, cls, DEFINITION), definition_source=_text(graph, cls, DEFINITION_SOURCE),
            notation=_text(graph, cls, SKOS.notation) or None, synonyms=tuple(synonyms),
            xrefs=tuple(sorted(str(o) for o in graph.objects(cls, OIO.hasDbXref))),
            exact_matches=tuple(sorted(compact(str(o)) for o in graph.objects(cls, SKOS.exactMatch))),
            parents=tuple(sorted(compact(str(o)) for o in graph.objects(cls, RDFS.subClassOf) if isinstance(o, URIRef))),
            root_cause=bool(graph.value(cls, M.rootCause)),
            candidate_category=_text(graph, cls, M.candidateCategory) or None,
            agent=_text(graph, cls, M.agent) or None,
            accepts_value_unit=_text(graph, cls, M.acceptsValueUnit) or None,
        )
    return terms


def _threshold_rule(graph: rdflib.Graph, node) -> ThresholdRule:
    return ThresholdRule(
        analyte=compact(str(graph.value(node, M.analyte))), comparator=_text(graph, node, M.comparator),
        threshold=Fraction(str(graph.value(node, M.threshold))), unit=_text(graph, node, M.unit),
        source="; ".join(sorted(str(o) for o in graph.objects(node, OIO.source))))


def _lab_tests(graph: rdflib.Graph, terms: dict[str, Term]) -> dict[str, LabTest]:
    high_rules: dict[str, ThresholdRule] = {}
    for sign, rule in graph.subject_objects(M.presentWhen):
        parsed = _threshold_rule(graph, rule)
        high_rules[parsed.analyte] = parsed
    tests = {}
    for term_id, term in terms.items():
        if term.kind != "LabTest":
            continue
        node = URIRef(expand(term_id))
        molar_node = graph.value(node, M.molarConversion)
        molar = None
        if molar_node is not None:
            mass_unit, molar_unit = _text(graph, molar_node, M.massUnit), _text(graph, molar_node, M.molarUnit)
            if graph.value(molar_node, M.massPerMolar) is not None:
                factor = Fraction(str(graph.value(molar_node, M.massPerMolar)))
            else:
                factor = 1 / Fraction(str(graph.value(molar_node, M.molarPerMass)))
            molar = MolarFactor(mass_unit, molar_unit, factor)
        ranges = []
        for rr in graph.objects(node, M.referenceRange):
            ranges.append(ReferenceRange(
                min_age_years=Fraction(str(graph.value(rr, M.minAgeYears))),
                max_age_years=Fraction(str(graph.value(rr, M.maxAgeYears))),
                sex=_text(graph, rr, M.sex) or None,
                low=_decimal(graph.value(rr, M.low)), high=_decimal(graph.value(rr, M.high)),
                unit=_text(graph, rr, M.unit),
                source="; ".join(sorted(str(o) for o in graph.objects(rr, OIO.source)))))
        ranges.sort(key=lambda r: (r.min_age_years, r.sex or ""))
        high = graph.value(node, M.highSign)
        low = graph.value(node, M.lowSign)
        tests[term_id] = LabTest(
            id=term_id, notation=term.notation or "", label=term.label,
            canonical_unit=_text(graph, node, M.canonicalUnit), quantity_kind=_text(graph, node, M.quantityKind),
            measures=compact(str(graph.value(node, M.measures))),
            loinc=tuple(x for x in term.xrefs if x.startswith("LOINC:")),
            high_sign=compact(str(high)) if high is not None else None,
            low_sign=compact(str(low)) if low is not None else None,
            molar=molar, kept_unconvertible_kind=_text(graph, node, M.keptUnconvertibleKind) or None,
            reference_ranges=tuple(ranges), high_rule=high_rules.get(term_id),
            plausible_max=_decimal(graph.value(node, M.plausibleMaximum)))
    return tests


def _edges(graph: rdflib.Graph) -> list[CausalEdge]:
    signs = {p: int(str(graph.value(p, M.effectSign))) for p in graph.subjects(M.isCausal, Literal(True))}
    provenance: dict[tuple, tuple] = {}
    for axiom in graph.subjects(RDF.type, OWL.Axiom):
        key = (graph.value(axiom, OWL.annotatedSource), graph.value(axiom, OWL.annotatedProperty),
               graph.value(axiom, OWL.annotatedTarget))
        provenance[key] = (tuple(sorted(str(o) for o in graph.objects(axiom, OIO.source))),
                           _text(graph, axiom, BIOLINK.knowledge_level), _text(graph, axiom, RDFS.comment))
    edges = []
    for relation, sign in signs.items():
        for subject, obj in graph.subject_objects(relation):
            sources, level, comment = provenance.get((subject, relation, obj), ((), "", ""))
            edges.append(CausalEdge(
                subject=compact(str(subject)), relation=compact(str(relation)),
                relation_label=_text(graph, relation, RDFS.label), object=compact(str(obj)), sign=sign,
                sources=sources, knowledge_level=level, comment=comment))
    edges.sort(key=lambda e: (e.subject, e.object, e.relation))
    return edges


def _id(graph: rdflib.Graph, node) -> str | None:
    return _text(graph, node, M.criterionId) or None if node is not None else None


def _order(graph: rdflib.Graph, node) -> int:
    return int(str(graph.value(node, M.order) or 0))


def _items(graph: rdflib.Graph, root) -> dict[str, CriterionItem]:
    items: dict[str, CriterionItem] = {}
    frontier = [root]
    while frontier:
        node = frontier.pop()
        item_id = _text(graph, node, M.criterionId)
        if not item_id or item_id in items:
            continue
        parts = sorted(graph.objects(node, M.part), key=lambda p: _order(graph, p))
        numerator, denominator = graph.value(node, M.numerator), graph.value(node, M.denominator)
        frontier.extend(parts)
        frontier.extend(x for x in (numerator, denominator) if x is not None)
        age_rule = graph.value(node, M.ageRule)
        measured = graph.value(node, M.measuredRule)
        analyte, finding = graph.value(node, M.analyte), graph.value(node, M.finding)
        absent = graph.value(node, M.absentFinding)
        bands = sorted((Band(comparator=_text(graph, b, M.comparator), threshold=Fraction(str(graph.value(b, M.threshold))),
                             points=Fraction(str(graph.value(b, M.points)))) for b in graph.objects(node, M.band)),
                       key=lambda b: b.points)
        items[item_id] = CriterionItem(
            id=item_id, label=_text(graph, node, RDFS.label), order=_order(graph, node),
            combination=_text(graph, node, M.combination) or None,
            min_count=int(str(graph.value(node, M.minCount))) if graph.value(node, M.minCount) is not None else None,
            parts=tuple(_text(graph, p, M.criterionId) for p in parts),
            analyte=compact(str(analyte)) if analyte is not None else None,
            comparator=_text(graph, node, M.comparator) or None,
            threshold=_decimal(graph.value(node, M.threshold)), unit=_text(graph, node, M.unit) or None,
            age_threshold=(Fraction(str(graph.value(age_rule, M.maxAgeDays))),
                           Fraction(str(graph.value(age_rule, M.threshold)))) if age_rule is not None else None,
            finding=compact(str(finding)) if finding is not None else None,
            sites=tuple(sorted(compact(str(s)) for s in graph.objects(node, M.site))),
            note=_text(graph, node, M.decisionNote),
            points=_decimal(graph.value(node, M.points)), bands=tuple(bands),
            coefficient=_decimal(graph.value(node, M.coefficient)),
            attribute=_text(graph, node, M.attribute) or None,
            measured_rule=_threshold_rule(graph, measured) if measured is not None else None,
            absent_finding=compact(str(absent)) if absent is not None else None,
            numerator=_id(graph, numerator), denominator=_id(graph, denominator))
    return items


def _criteria(graph: rdflib.Graph) -> list[CriteriaSet]:
    sets = []
    for node in graph.subjects(RDF.type, M.CriteriaSet):
        rule = graph.value(node, M.rule)
        table = sorted((Fraction(str(graph.value(row, M.scoreValue))), Fraction(str(graph.value(row, M.probability))))
                       for row in graph.objects(node, M.probabilityPoint))
        pretests = [PretestDefault(
            probability=Fraction(str(graph.value(d, M.probability))),
            context=compact(str(graph.value(d, M.context))) if graph.value(d, M.context) is not None else None,
            source="; ".join(sorted(str(o) for o in graph.objects(d, OIO.source))), comment=_text(graph, d, RDFS.comment))
            for d in graph.objects(node, M.pretestDefault)]
        pretests.sort(key=lambda d: (d.context is None, d.context or ""))  # specific contexts first
        sets.append(CriteriaSet(
            id=_text(graph, node, M.criterionId), iri=str(node), label=_text(graph, node, RDFS.label),
            definition=_text(graph, node, DEFINITION), citation=_text(graph, node, M.citation),
            sources=tuple(sorted(str(o) for o in graph.objects(node, OIO.source))),
            population=tuple(sorted(compact(str(o)) for o in graph.objects(node, M.population))),
            population_note=_text(graph, node, M.populationNote),
            rule=_text(graph, rule, M.criterionId),
            scored_items=tuple(sorted(_text(graph, x, M.criterionId) for x in graph.objects(node, M.scoredItem))),
            items=FrozenDict(_items(graph, rule)),
            sensitivity=_decimal(graph.value(node, M.sensitivity)),
            specificity=_decimal(graph.value(node, M.specificity)),
            performance_note=_text(graph, node, M.performanceNote), decision_note=_text(graph, node, M.decisionNote),
            probability_table=tuple(table),
            probability_labels=(_text(graph, node, M.probabilityBelowLabel), _text(graph, node, M.probabilityAboveLabel)),
            pretest_defaults=tuple(pretests), order=_order(graph, node),
            short_label=_text(graph, node, M.shortLabel) or _text(graph, node, RDFS.label),
            alert_tier=_text(graph, node, M.alertTier) or "none"))
    sets.sort(key=lambda s: (s.order, s.id))
    return sets


def _codes(terms: dict[str, Term]) -> dict[str, str]:
    codes: dict[str, str] = {}
    # Lower priority first: synonyms, then CURIEs, then short names override.
    for term in terms.values():
        if term.kind in {"LabTest", "ClinicalSign", "Disease", "Trigger", "Anatomy", "Therapy"}:
            for synonym in term.synonyms:
                codes.setdefault(synonym.lower(), term.id)
    for term in terms.values():
        if term.kind in {"LabTest", "ClinicalSign", "Disease", "Anatomy", "LabSign"}:
            for curie in (*term.xrefs, *term.exact_matches):
                codes[curie.lower()] = term.id
    for term in terms.values():  # medications name therapies by label or synonym
        if term.kind == "Therapy":
            codes.setdefault(term.label.lower(), term.id)
    for term in terms.values():
        if term.notation:
            codes[term.notation.lower()] = term.id
    return codes


# ---- ranking knowledge (core.ttl, sections Candidate ranking and Alerts)

def _term(graph: rdflib.Graph, node, prop) -> str | None:
    value = graph.value(node, prop)
    return compact(str(value)) if isinstance(value, URIRef) else None


def _term_list(graph: rdflib.Graph, node, prop) -> tuple[str, ...]:
    return tuple(sorted(compact(str(v)) for v in graph.objects(node, prop) if isinstance(v, URIRef)))


def _texts(graph: rdflib.Graph, node, prop) -> tuple[str, ...]:
    return tuple(sorted(str(v) for v in graph.objects(node, prop)))


def _local(node) -> str:
    return str(node).rsplit("/", 1)[-1]


def candidate_categories(graph: rdflib.Graph) -> list[CandidateCategory]:
    found = [CandidateCategory(category=str(category), term=compact(str(cls)), order=_order(graph, cls),
                               short_label=_text(graph, cls, M.shortLabel) or _text(graph, cls, RDFS.label))
             for cls, category in graph.subject_objects(M.candidateCategory)]
    return sorted(found, key=lambda c: (c.order, c.category))


def evidence_rules(graph: rdflib.Graph) -> list[EvidenceRule]:
    rules = []
    for node in graph.subjects(RDF.type, M.EvidenceRule):
        effects = []
        for effect in graph.objects(node, M.effect):
            candidate, weight = _term(graph, effect, M.candidate), _decimal(graph.value(effect, M.weight))
            if candidate is None or weight is None:
                raise ValueError(f"evidence rule {_local(node)}: an effect needs mkg:candidate and mkg:weight")
            effects.append(Effect(candidate=candidate, weight=weight))
        rule = EvidenceRule(
            id=_local(node), label=_text(graph, node, RDFS.label),
            effects=tuple(sorted(effects, key=lambda e: e.candidate)), sources=_texts(graph, node, OIO.source),
            comment=_text(graph, node, RDFS.comment), order=_order(graph, node),
            criterion=_text(graph, node, M.whenCriterion) or None, status=_text(graph, node, M.whenStatus) or None,
            conditions=_term_list(graph, node, M.whenCondition), finding=_term(graph, node, M.whenFinding),
            absent=bool(graph.value(node, M.whenAbsent)), gene_of=_term(graph, node, M.whenGeneOf),
            analyte=_term(graph, node, M.analyte), direction=_text(graph, node, M.direction) or None,
            via=_term(graph, node, M.via), one_sided=bool(graph.value(node, M.oneSided)), comparator=_text(graph, node, M.comparator) or None,
            threshold=_decimal(graph.value(node, M.threshold)), unit=_text(graph, node, M.unit) or None,
            attribute=_text(graph, node, M.attribute) or None, alert=_text(graph, node, M.whenAlert) or None,
            max_age_years=_decimal(graph.value(node, M.maxAgeYears)))
        if not rule.kind:
            raise ValueError(f"evidence rule {rule.id} has no condition")
        rules.append(rule)
    return sorted(rules, key=lambda r: (r.order, r.id))


def indications(graph: rdflib.Graph) -> list[Indication]:
    found = []
    for therapy, node in graph.subject_objects(M.indication):
        candidate = _term(graph, node, M.candidate)
        if candidate is None:
            raise ValueError(f"an indication of {compact(str(therapy))} has no mkg:candidate")
        found.append(Indication(therapy=compact(str(therapy)), candidate=candidate,
                                sources=_texts(graph, node, OIO.source), comment=_text(graph, node, RDFS.comment)))
    return sorted(found, key=lambda i: (i.candidate, i.therapy))


def alert_rules(graph: rdflib.Graph) -> list[AlertRule]:
    rules = []
    for node in graph.subjects(RDF.type, M.AlertRule):
        parts = []
        for part in graph.objects(node, M.trendPart):
            analyte, change = _term(graph, part, M.analyte), _decimal(graph.value(part, M.relativeChange))
            direction = _text(graph, part, M.direction)
            if analyte is None or change is None or direction not in ("rising", "falling"):
                raise ValueError(f"alert {_local(node)}: a trend part needs mkg:analyte, mkg:direction rising|falling "
                                 "and mkg:relativeChange")
            parts.append(TrendPart(analyte=analyte, direction=direction, relative_change=change))
        rules.append(AlertRule(
            code=_text(graph, node, M.alertCode), label=_text(graph, node, RDFS.label),
            kind=_text(graph, node, M.alertKind), severity=_text(graph, node, M.severity) or "warning",
            definition=_text(graph, node, DEFINITION), sources=_texts(graph, node, OIO.source),
            setting_note=_text(graph, node, M.settingNote), order=_order(graph, node),
            high_analytes=_term_list(graph, node, M.highAnalyte), not_high_analytes=_term_list(graph, node, M.notHighAnalyte),
            parts=tuple(sorted(parts, key=lambda p: p.analyte)), lookback_hours=_decimal(graph.value(node, M.lookbackHours)),
            earlier_high=_term_list(graph, node, M.earlierHigh), any_alerts=_texts(graph, node, M.anyAlert),
            all_alerts=_texts(graph, node, M.allAlert)))
    return sorted(rules, key=lambda r: (r.order, r.code))


def compile_graph(files: list[Path], digest: str) -> KnowledgeBase:
    graph = read_graph(files)
    terms = _terms(graph)
    tests = _lab_tests(graph, terms)
    genes_to_diseases: dict[str, list[str]] = {}
    for disease, gene in graph.subject_objects(OBO.RO_0004003):
        genes_to_diseases.setdefault(compact(str(gene)), []).append(compact(str(disease)))
    ancestors = {term_id: _ancestors(graph, URIRef(expand(term_id))) for term_id in terms}
    return KnowledgeBase(
        digest=digest, terms=FrozenDict(terms), lab_tests=FrozenDict(tests), edges=tuple(_edges(graph)),
        criteria=tuple(_criteria(graph)), codes=FrozenDict(_codes(terms)),
        genes_to_diseases=FrozenDict({g: tuple(sorted(d)) for g, d in genes_to_diseases.items()}),
        tests_by_high_sign=FrozenDict({t.high_sign: t.id for t in tests.values() if t.high_sign}),
        candidates=tuple(candidate_categories(graph)), evidence=tuple(evidence_rules(graph)),
        indications=tuple(indications(graph)), alerts=tuple(alert_rules(graph)),
        _ancestors=FrozenDict(ancestors))
