"""A report as RDF: asserted and inferred named graphs with PROV (vocabulary: ``ontology/report.ttl``).

The writer emits N-Quads text directly: both stores bulk-load it (Oxigraph
parses it in Rust, far faster than building term objects in Python) and
:meth:`kg.Report.to_rdf` parses it into an :class:`rdflib.Dataset`.

>>> import kg
>>> report = kg.Engine().explain("examples/patients/sjia-mas.json")
>>> quads = report_nquads(report.data)
>>> any("graph/patient/ex-sjia-mas/inferred" in line and "CriteriaVerdict" in line for line in quads.splitlines())
True
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Iterable
from urllib.parse import quote

from .knowledge import MKG, expand

__all__ = ["MKR", "DATA", "ONTOLOGY_GRAPH", "EDGES_GRAPH", "PREFIXES", "patient_iri", "graph_iris", "edge_iri",
           "report_nquads", "edges_nquads", "literal", "iri", "escape"]

MKR = MKG + "report/"
DATA = MKG + "data/"
GRAPHS = MKG + "graph/"
ONTOLOGY_GRAPH = GRAPHS + "ontology"
EDGES_GRAPH = GRAPHS + "causal-edges"
EDGES = MKG + "edge/"
ENGINE = MKG + "engine"
ONTOLOGY = MKG + "ontology"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
PROV = "http://www.w3.org/ns/prov#"
XSD = "http://www.w3.org/2001/XMLSchema#"

#: Prefixes the queries and the Turtle output use.
PREFIXES = {
    "mkg": MKG, "mkr": MKR, "crit": MKG + "criteria/", "ev": MKG + "evidence/", "al": MKG + "alert/",
    "prov": PROV, "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#", "xsd": XSD, "obo": "http://purl.obolibrary.org/obo/",
    "oio": "http://www.geneontology.org/formats/oboInOwl#", "skos": "http://www.w3.org/2004/02/skos/core#",
}


def _segment(text: str) -> str:
    """A path segment of an IRI: every character outside unreserved ones percent-encoded."""
    return quote(str(text), safe="")


def patient_iri(patient_id: str) -> str:
    """The IRI of a patient.

    >>> patient_iri("p 1/<x>")
    'https://w3id.org/mas-kg/data/patient/p%201%2F%3Cx%3E'
    """
    return f"{DATA}patient/{_segment(patient_id)}"


def graph_iris(patient_id: str) -> tuple[str, str]:
    """The (asserted, inferred) named graphs of a patient."""
    base = f"{GRAPHS}patient/{_segment(patient_id)}"
    return base + "/asserted", base + "/inferred"


def edge_iri(subject: str, relation: str, obj: str) -> str:
    """The IRI naming one causal edge of the ontology (CURIEs in, an IRI out).

    >>> edge_iri("mkg:IL18", "RO:0002304", "mkg:TCellActivationLoop")
    'https://w3id.org/mas-kg/edge/mkg:IL18/RO:0002304/mkg:TCellActivationLoop'
    """
    return EDGES + "/".join(quote(part, safe=":") for part in (subject, relation, obj))


def edges_nquads(edges: Iterable[Any]) -> str:
    """The ontology's causal edges as named resources, in the graph ``EDGES_GRAPH``.

    In the Turtle each edge is a triple ``A relation B`` annotated by a blank
    ``owl:Axiom`` node; explanation steps need a name to point at, so each
    edge becomes ``<edge/A/relation/B>`` with its ends, sign, sources,
    knowledge level and claim (derived from the axioms, nothing added).
    """
    out = _Writer()
    out.graph = f"<{EDGES_GRAPH}>"
    for edge in edges:
        node = f"<{edge_iri(edge.subject, edge.relation, edge.object)}>"
        out.add(node, _TYPE, _p("CausalEdge"))
        out.link(node, _p("from"), edge.subject)
        out.link(node, _p("relation"), edge.relation)
        out.link(node, _p("to"), edge.object)
        out.value(node, _p("sign"), "+" if edge.sign > 0 else "-")
        for source in edge.sources:
            out.value(node, _p("source"), source)
        out.value(node, _p("knowledgeLevel"), edge.knowledge_level)
        out.value(node, _p("claim"), edge.comment)
    return out.text()


def iri(value: str) -> str:
    """An IRI term in N-Triples syntax (a CURIE of ours is expanded first)."""
    full = expand(value)
    if any(c in full for c in '<>"{}|^`\\ \n\r\t'):
        full = quote(full, safe=":/#?&=%+,;@!$'()*~")
    return f"<{full}>"


def escape(text: str) -> str:
    """A string's body in N-Triples/Turtle syntax (also what SPARQL TSV results need)."""
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t"))


def literal(value: Any) -> str:
    """A literal in N-Triples syntax with its XSD datatype (strings are plain xsd:string).

    >>> literal(3), literal(2.5), literal(True), literal("2024-03-02T08:00:00Z"), literal("a\\"b")
    ('"3"^^<http://www.w3.org/2001/XMLSchema#integer>', '"2.5"^^<http://www.w3.org/2001/XMLSchema#decimal>', \
'"true"^^<http://www.w3.org/2001/XMLSchema#boolean>', \
'"2024-03-02T08:00:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>', '"a\\\\"b"')
    """
    if isinstance(value, bool):
        return f'"{str(value).lower()}"^^<{XSD}boolean>'
    if isinstance(value, int):
        return f'"{value}"^^<{XSD}integer>'
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return f'"{canonical_decimal(Decimal(repr(value)))}"^^<{XSD}decimal>'
    text = str(value)
    if _is_datetime(text):
        return f'"{text}"^^<{XSD}dateTime>'
    return f'"{escape(text)}"'


def canonical_decimal(value: Decimal) -> str:
    """The canonical lexical form of an xsd:decimal (no exponent, no trailing zeros).

    >>> canonical_decimal(Decimal("14500.0")), canonical_decimal(Decimal("1E-5")), canonical_decimal(Decimal("-0"))
    ('14500', '0.00001', '0')
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _is_datetime(text: str) -> bool:
    return (len(text) >= 20 and text[4] == "-" and text[7] == "-" and text[10] == "T" and text[13] == ":"
            and text[:4].isdigit() and (text.endswith("Z") or text[-6] in "+-"))


class _Writer:
    """Collects quads as N-Quads lines, in order, without duplicates."""

    def __init__(self) -> None:
        self.lines: dict[str, None] = {}
        self.graph = ""

    def add(self, subject: str, predicate: str, obj: str) -> None:
        self.lines[f"{subject} {predicate} {obj} {self.graph} .\n"] = None

    def value(self, subject: str, predicate: str, value: Any) -> None:
        if value is not None:
            self.add(subject, predicate, literal(value))

    def link(self, subject: str, predicate: str, target: str | None) -> None:
        if target:
            self.add(subject, predicate, iri(target))

    def text(self) -> str:
        return "".join(self.lines)


def _p(name: str) -> str:
    return f"<{MKR}{name}>"


_TYPE, _LABEL = f"<{RDF_TYPE}>", f"<{RDFS_LABEL}>"
_GENERATED, _DERIVED, _USED = f"<{PROV}wasGeneratedBy>", f"<{PROV}wasDerivedFrom>", f"<{PROV}used>"


def report_nquads(report: dict[str, Any]) -> str:
    """The report (``Report.to_dict()``) as N-Quads in the patient's asserted and inferred graphs."""
    from . import __version__
    pid = report["patient"]
    base = patient_iri(pid)
    asserted, inferred = graph_iris(pid)
    node = lambda *parts: "<" + base + "".join("/" + _segment(p) for p in parts) + ">"  # noqa: E731
    patient, evaluation = f"<{base}>", node("evaluation")
    out = _Writer()
    obs_node = {}

    def given(kind: str, *parts: Any) -> str:
        record = node(*parts)
        out.add(record, _TYPE, _p(kind))
        out.add(record, _p("patient"), patient)
        return record

    # ---- asserted: what was given
    out.graph = f"<{asserted}>"
    out.add(patient, _TYPE, _p("Patient"))
    out.value(patient, _p("patientId"), pid)
    out.value(patient, _p("ageYears"), report.get("age_years"))
    for i, condition in enumerate(report.get("conditions", [])):
        record = given("ConditionStatement", "condition", i)
        out.link(record, _p("term"), condition.get("term"))
        out.value(record, _p("code"), condition.get("code"))
        out.value(record, _p("status"), condition.get("status"))
    for i, medication in enumerate(report.get("medications", [])):
        record = given("MedicationStatement", "medication", i)
        out.value(record, _p("code"), medication.get("code"))
        out.link(record, _p("term"), medication.get("therapy"))
        out.value(record, _p("time"), medication.get("start"))
    observations = report.get("observations", {})
    for item in observations.get("items", []):
        record = obs_node[item["index"]] = given("Observation", "observation", item["index"])
        out.value(record, _p("index"), item["index"])
        out.value(record, _p("code"), item["code"])
        out.value(record, _p("givenCode"), item.get("given_code"))
        out.link(record, _p("term"), item.get("term"))
        for key in ("value", "unit", "comparator", "time", "present"):
            out.value(record, _p(key), item.get(key))
        out.link(record, _p("site"), item.get("site"))
        if item.get("gene"):
            out.link(record, _p("gene"), f"mkg:{item['gene']}")
    for rejected in observations.get("rejected", []):
        record = obs_node[rejected["index"]] = given("Observation", "observation", rejected["index"])
        out.value(record, _p("index"), rejected["index"])
        out.value(record, _p("givenCode"), rejected.get("code"))

    # ---- inferred: what the engine derived, and from what
    out.graph = f"<{inferred}>"
    out.add(evaluation, _TYPE, _p("Evaluation"))
    out.add(evaluation, f"<{PROV}wasAssociatedWith>", f"<{ENGINE}>")
    out.add(f"<{ENGINE}>", _TYPE, f"<{PROV}SoftwareAgent>")
    out.value(f"<{ENGINE}>", _p("version"), __version__)
    out.value(evaluation, _p("at"), report.get("at"))
    out.add(evaluation, _USED, f"<{ONTOLOGY}>")
    out.value(evaluation, _p("ontologyDigest"), report.get("ontology", {}).get("digest"))
    out.add(evaluation, _p("patient"), patient)
    for record in obs_node.values():
        out.add(evaluation, _USED, record)
    for rejected in observations.get("rejected", []):
        record = obs_node[rejected["index"]]
        out.add(record, _TYPE, _p("RejectedObservation"))
        out.value(record, _p("rejectionReason"), rejected["reason"])

    def generated(record: str, kind: str, *, part: bool = False) -> None:
        out.add(record, _TYPE, _p(kind))
        if not part:  # parts (items, evidence) reach the patient through their whole
            out.add(record, _p("patient"), patient)
        out.add(record, _GENERATED, evaluation)

    finding_node = {}
    explained = {e["finding"]: len(e.get("paths", [])) for e in report.get("explanations", [])}
    for finding in report.get("findings", []):
        record = finding_node[finding["code"]] = node("finding", finding["code"])
        generated(record, "Finding")
        out.value(record, _p("code"), finding["code"])
        out.link(record, _p("term"), finding.get("term"))
        interpretation = finding.get("interpretation") or ("present" if finding.get("present") else "absent")
        out.value(record, _p("interpretation"), interpretation)
        if interpretation not in ("normal", "absent"):
            out.link(record, _p("phenotype"), finding.get("phenotype"))
            out.value(record, _p("pathCount"), explained.get(finding["code"], 0))  # 0: unexplained
        for key in ("value", "unit", "time"):
            out.value(record, _p(key), finding.get(key))
        out.value(record, _p("interpretationBasis"), finding.get("interpretation_basis"))
        out.value(record, _p("referenceRangeSource"), (finding.get("reference_range") or {}).get("source"))
        if finding.get("index") in obs_node:
            out.add(record, _DERIVED, obs_node[finding["index"]])

    verdict_node = {}
    for verdict in report.get("criteria", []):
        record = verdict_node[verdict["id"]] = node("criteria", verdict["id"])
        generated(record, "CriteriaVerdict")
        out.link(record, _p("criteriaSet"), f"crit:{verdict['id']}")
        out.value(record, _p("code"), verdict["id"])
        out.value(record, _p("status"), verdict["status"])
        out.value(record, _p("score"), verdict.get("score"))
        low, high = verdict.get("score_range") or (None, None)
        out.value(record, _p("scoreMin"), low)
        out.value(record, _p("scoreMax"), high)
        out.value(record, _p("cutoff"), verdict.get("cutoff"))
        out.value(record, _p("probability"), verdict.get("probability"))
        for source in verdict.get("sources", []):
            out.value(record, _p("source"), source)
        for item in verdict.get("items", []):
            item_record = node("criteria", verdict["id"], "item", item["id"])
            generated(item_record, "ItemVerdict", part=True)
            out.add(record, _p("hasItem"), item_record)
            out.link(item_record, _p("criterionItem"), f"crit:{item['id']}")
            out.value(item_record, _p("code"), item["id"])
            out.value(item_record, _p("status"), item["status"])
            for key in ("value", "unit", "points"):
                out.value(item_record, _p(key), item.get(key))
            if item.get("observation") in obs_node:
                out.add(item_record, _DERIVED, obs_node[item["observation"]])
            for part in item.get("parts", []):
                out.add(item_record, _DERIVED, node("criteria", verdict["id"], "item", part))

    alert_node = {alert["code"]: node("alert", alert["code"]) for alert in report.get("alerts", [])}
    for candidate in report.get("candidates", []):
        record = node("candidate", candidate["category"])
        generated(record, "CandidateAssessment")
        out.value(record, _p("category"), candidate["category"])
        out.link(record, _p("candidate"), candidate.get("term"))
        out.value(record, _p("rank"), candidate.get("rank"))
        out.value(record, _p("score"), candidate.get("score"))
        for evidence in candidate.get("evidence", []):
            item = node("candidate", candidate["category"], "evidence", evidence["rule"])
            generated(item, "EvidenceItem", part=True)
            out.add(record, _p("hasEvidence"), item)
            out.link(item, _p("evidenceRule"), f"mkg:evidence/{evidence['rule']}")
            out.value(item, _p("kind"), evidence.get("kind"))
            out.value(item, _p("points"), evidence.get("points"))
            out.value(item, _p("text"), evidence.get("text"))
            for upstream in _evidence_inputs(evidence, verdict_node, finding_node, alert_node):
                out.add(item, _DERIVED, upstream)

    for explanation in report.get("explanations", []):
        record = node("explanation", explanation["finding"])
        generated(record, "Explanation")
        out.value(record, _p("direction"), explanation.get("direction"))
        if explanation["finding"] in finding_node:
            out.add(record, _p("explains"), finding_node[explanation["finding"]])
            out.add(record, _DERIVED, finding_node[explanation["finding"]])
        _paths(out, node, ("explanation", explanation["finding"]), record, explanation.get("paths", []))

    for alert in report.get("alerts", []):
        record = alert_node[alert["code"]]
        generated(record, "AlertRecord")
        out.link(record, _p("alertRule"), f"mkg:alert/{alert['code']}")
        out.value(record, _p("code"), alert["code"])
        out.value(record, _p("severity"), alert.get("severity"))
        out.value(record, _p("message"), alert.get("message"))
        for evidence in alert.get("evidence", []):
            if evidence.get("code") in finding_node:
                out.add(record, _DERIVED, finding_node[evidence["code"]])
        _paths(out, node, ("alert", alert["code"]), record, alert.get("explanation", []))
    return out.text()


def _evidence_inputs(evidence: dict[str, Any], verdicts: dict[str, str], findings: dict[str, str],
                     alerts: dict[str, str]) -> Iterable[str]:
    """The records an evidence item rests on: the verdict, finding or alert its rule read."""
    if evidence.get("criterion") in verdicts:
        yield verdicts[evidence["criterion"]]
    if evidence.get("finding") in findings:
        yield findings[evidence["finding"]]
    if evidence.get("alert") in alerts:
        yield alerts[evidence["alert"]]


def _paths(out: _Writer, node, prefix: tuple, owner: str, paths: list[dict[str, Any]]) -> None:
    for rank, path in enumerate(paths, 1):
        # Lean on purpose (explanations are most of a report): a step is its
        # position and the named ontology edge, whose ends, sign and sources
        # live once in EDGES_GRAPH; a path's type follows from mkr:hasPath.
        record = node(*prefix, "path", rank)
        out.add(owner, _p("hasPath"), record)
        out.value(record, _p("rank"), rank)
        out.link(record, _p("root"), path.get("root"))
        out.value(record, _p("length"), len(path["steps"]))
        out.value(record, _p("inContext"), path.get("in_context"))
        for position, step in enumerate(path["steps"], 1):
            item = node(*prefix, "path", rank, "step", position)
            out.add(record, _p("hasStep"), item)
            out.value(item, _p("position"), position)
            out.add(item, _p("edge"), f"<{edge_iri(step['from'], step['relation'], step['to'])}>")
