"""A report as RDF: named graphs, PROV, nothing lost, edges traceable to the ontology; the CLI's RDF and query."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import rdflib
from rdflib import Literal, URIRef
from rdflib.namespace import OWL, RDF

from kg.knowledge import expand
from kg.rdf import EDGES_GRAPH, MKR, ONTOLOGY_GRAPH, graph_iris, patient_iri
from kg.store import open_store

from conftest import EXAMPLES, ROOT, patient

PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
R = rdflib.Namespace(MKR)
OIO_SOURCE = URIRef("http://www.geneontology.org/formats/oboInOwl#source")


@pytest.fixture(scope="module")
def report(engine):
    return engine.explain(EXAMPLES / "sjia-mas.json")


def test_asserted_and_inferred_are_separate_named_graphs(report):
    dataset = report.to_rdf()
    asserted, inferred = (dataset.graph(URIRef(g)) for g in graph_iris("ex-sjia-mas"))
    assert len(asserted) and len(inferred)
    # what was given is asserted; what the engine derived is inferred, never the other way round
    assert set(asserted.subjects(RDF.type, R.Observation)) and not set(inferred.subjects(RDF.type, R.Observation))
    assert set(inferred.subjects(RDF.type, R.Finding)) and not set(asserted.subjects(RDF.type, R.Finding))
    assert not set(asserted.subjects(PROV.wasGeneratedBy, None))


def test_every_observation_is_in_the_asserted_graph(report):
    dataset = report.to_rdf()
    asserted, _ = (dataset.graph(URIRef(g)) for g in graph_iris("ex-sjia-mas"))
    indexes = {int(i) for i in asserted.objects(None, R["index"])}
    assert indexes == set(range(report.data["observations"]["given"]))


def test_rejected_observations_carry_their_reason_in_the_inferred_graph(engine):
    data = patient([{"code": "ferritin", "value": 12000, "unit": "ng/mL"},
                    {"code": "ferriton", "value": 1, "unit": "ng/mL"},
                    {"code": "platelets", "value": 90, "unit": "kg"}], id="rej")
    report = engine.explain(data)
    dataset = report.to_rdf()
    asserted, inferred = (dataset.graph(URIRef(g)) for g in graph_iris("rej"))
    assert {int(i) for i in asserted.objects(None, R["index"])} == {0, 1, 2}
    rejected = {int(asserted.value(o, R["index"])): str(inferred.value(o, R.rejectionReason))
                for o in inferred.subjects(RDF.type, R.RejectedObservation)}
    assert set(rejected) == {1, 2} and all(rejected.values())
    assert rejected == {r["index"]: r["reason"] for r in report.data["observations"]["rejected"]}


def test_every_inferred_record_was_generated_by_the_evaluation_which_used_the_inputs(report):
    dataset = report.to_rdf()
    _, inferred = (dataset.graph(URIRef(g)) for g in graph_iris("ex-sjia-mas"))
    evaluation = next(inferred.subjects(RDF.type, R.Evaluation))
    for kind in ("Finding", "CriteriaVerdict", "ItemVerdict", "CandidateAssessment", "EvidenceItem", "Explanation",
                 "AlertRecord"):
        records = set(inferred.subjects(RDF.type, R[kind]))
        assert records, kind
        assert all(inferred.value(r, PROV.wasGeneratedBy) == evaluation for r in records), kind
    used = set(inferred.objects(evaluation, PROV.used))
    assert URIRef("https://w3id.org/mas-kg/ontology") in used
    assert len(used) == report.data["observations"]["given"] + 1
    # a verdict names the criteria set it applied; a finding the observation it came from
    verdict = next(s for s in inferred.subjects(R.code, Literal("mas2016")))
    assert inferred.value(verdict, R.criteriaSet) == URIRef(expand("crit:mas2016"))
    finding = URIRef(patient_iri("ex-sjia-mas") + "/finding/ferritin")
    assert inferred.value(finding, PROV.wasDerivedFrom) == URIRef(patient_iri("ex-sjia-mas") + "/observation/45")


def test_every_step_follows_a_sourced_ontology_edge(engine, report):
    """Provenance: a path step -> a named edge -> the ontology triple and its owl:Axiom's sources."""
    store = open_store(kb=engine.kb, reports=[report])
    rows = store.query("""
        SELECT DISTINCT ?edge ?from ?relation ?to WHERE {
          ?path mkr:hasStep/mkr:edge ?edge .
          GRAPH ?g { ?edge mkr:from ?from ; mkr:relation ?relation ; mkr:to ?to } }""").rows
    assert len(rows) > 20
    ontology = rdflib.Graph()
    for path in sorted((ROOT / "ontology").rglob("*.ttl")):
        ontology.parse(path, format="turtle")
    edges = rdflib.Dataset()
    edges.parse(data=store.dump(), format="nquads")
    edge_graph = edges.graph(URIRef(EDGES_GRAPH))
    for edge, subject, relation, obj in rows:
        assert (subject, relation, obj) in ontology, edge
        axiom = next(a for a in ontology.subjects(OWL.annotatedSource, subject)
                     if ontology.value(a, OWL.annotatedProperty) == relation
                     and ontology.value(a, OWL.annotatedTarget) == obj)
        assert {str(s) for s in ontology.objects(axiom, OIO_SOURCE)} == \
            {str(s) for s in edge_graph.objects(edge, R.source)} != set()


def test_hostile_ids_and_text_stay_inside_their_terms(engine):
    hostile = 'p "1"\n<script>alert(1)</script> } . <urn:x> <urn:y> <urn:z> .'
    report = engine.explain(patient([{"code": "ferritin", "value": 12000, "unit": "ng/mL"}], id=hostile))
    dataset = report.to_rdf()
    ids = {o for _, _, o, _ in dataset.quads((None, R.patientId, None, None))}
    assert ids == {Literal(hostile)}
    assert not any(URIRef("urn:x") in quad for quad in dataset.quads((None, None, None, None)))
    assert set(g.identifier for g in dataset.graphs() if len(g)) == {URIRef(g) for g in graph_iris(hostile)}


def run(*args):
    return subprocess.run([sys.executable, "-m", "kg.cli", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,parser", [("turtle", "turtle"), ("trig", "trig"), ("nquads", "nquads")])
def test_explain_prints_rdf(fmt, parser):
    result = run("explain", str(EXAMPLES / "sjia-mas.json"), "--format", fmt)
    assert result.returncode == 0, result.stderr
    graph = rdflib.Dataset(default_union=True) if parser != "turtle" else rdflib.Graph()
    graph.parse(data=result.stdout, format=parser)
    assert (None, RDF.type, R.CriteriaVerdict) in graph


@pytest.mark.slow
def test_query_command_runs_a_named_query_in_every_format():
    args = ["query", "patient-criteria", "--patient", str(EXAMPLES / "sjia-mas.json"), "--param",
            "patient=ex-sjia-mas", "--param", "status=met"]
    table = run(*args)
    assert table.returncode == 0, table.stderr
    assert "mas2016" in table.stdout and "row" in table.stdout.splitlines()[-1]
    as_json = json.loads(run(*args, "--format", "json").stdout)
    assert "mas2016" in {b["criteria"]["value"] for b in as_json["results"]["bindings"]}
    csv = run(*args, "--format", "csv", "--backend", "rdflib").stdout
    assert csv.splitlines()[0].startswith("patient,criteria,status") and "mas2016" in csv
    listing = run("query", "--list").stdout
    assert "why-abnormal(patient, lab?)" in listing


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["query", "no-such-query"], "no query named 'no-such-query'"),
    (["query", "why-abnormal"], "needs --param patient"),
    (["query", "why-abnormal", "--param", "patient"], "expected KEY=VALUE"),
    (["query", "why-abnormal", "--param", "patient=x", "--param", "bogus=1"], "has no parameter 'bogus'"),
])
def test_query_command_bad_input(args, message):
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_query_command_runs_a_query_file_and_refuses_service(tmp_path):
    good = tmp_path / "count.rq"
    good.write_text("# Question: how many causal edges?\nSELECT (COUNT(*) AS ?n) WHERE { ?e a mkr:CausalEdge }\n")
    result = run("query", str(good), "--format", "csv")
    assert result.returncode == 0 and int(result.stdout.splitlines()[1]) > 100
    bad = tmp_path / "bad.rq"
    bad.write_text("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }\n")
    result = run("query", str(bad))
    assert result.returncode == 2 and "SERVICE is refused" in result.stderr and "Traceback" not in result.stderr
    slow = tmp_path / "slow.rq"
    slow.write_text("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }\n")
    result = run("query", str(slow), "--timeout", "0.5")
    assert result.returncode == 2 and "time limit" in result.stderr


def test_ontology_graph_is_loaded(engine):
    store = open_store(kb=engine.kb)
    count = store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?s ?p ?o }} }}").rows[0][0]
    assert int(count) > 5000
