"""The query suite on both stores: identical results, and an expected answer for every query.

Expected answers are computed independently where possible: from the JSON
reports (not their RDF) and from the knowledge base's causal graph with
networkx, so a mistake in the RDF writer or a query shows up as a mismatch.
"""

from __future__ import annotations

import re

import networkx as nx
import pytest
from rdflib import Literal, URIRef

from kg.causal import edge_graph
from kg.errors import QueryError, QueryRefused, QueryTimeout, ResultTooLarge
from kg.knowledge import expand
from kg.rdf import ONTOLOGY_GRAPH
from kg.sparql import check_query, load_queries
from kg.store import BACKENDS, open_store

from conftest import EXAMPLES

SUITE = load_queries()
PATIENT_FILES = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "expected.json")


@pytest.fixture(scope="module")
def reports(engine):
    return {r.patient: r.to_dict() for r in (engine.explain(p) for p in PATIENT_FILES)}


@pytest.fixture(scope="module")
def stores(engine, reports):
    return {backend: open_store(backend=backend, kb=engine.kb, reports=reports.values()) for backend in BACKENDS}


def run(stores, name, **params):
    """Run a named query on every backend; assert identical results; return the rows as dicts."""
    query = SUITE[name]
    bindings = query.bind({k: str(v) for k, v in params.items()})
    results = {backend: store.query(query.text, bindings=bindings) for backend, store in stores.items()}
    first, *others = results.values()
    for backend, result in results.items():
        assert result == first, f"{name}: {backend} differs"
    return first.records()


def causal_graph(kb) -> nx.DiGraph:
    return edge_graph(kb.edges)


# ------------------------------------------------------------------ the suite itself
def test_the_suite_has_at_least_twelve_documented_queries():
    assert len(SUITE) >= 12
    for query in SUITE.values():
        assert query.question, query.name
        assert query.example.startswith(f"mas-kg query {query.name}"), query.name
        for parameter in query.parameters:
            assert parameter.text and "Example:" in parameter.text, (query.name, parameter.name)
            # a parameter must be projected: Oxigraph substitutes only projected variables
            assert re.search(rf"SELECT[^{{]*\?{parameter.name}\b", query.text), (query.name, parameter.name)
        assert "{" + "}" not in query.text and "%s" not in query.text, query.name


def test_every_query_runs_on_both_backends_with_its_example_parameters(stores):
    for query in SUITE.values():
        params = {p.name: re.search(r"Example: (\S+)", p.text).group(1) for p in query.parameters}
        run(stores, query.name, **params)


def test_parameters_are_checked_and_typed():
    query = SUITE["why-abnormal"]
    with pytest.raises(QueryError, match="has no parameter 'lba'"):
        query.bind({"patient": "x", "lba": "ferritin"})
    with pytest.raises(QueryError, match="needs --param patient"):
        query.bind({})
    assert SUITE["inferred-from-observation"].bind({"patient": "x", "index": "42"})["index"] == Literal(42)
    with pytest.raises(QueryError, match="not an integer"):
        SUITE["inferred-from-observation"].bind({"patient": "x", "index": "4.5"})
    assert SUITE["downstream-findings"].bind({"mechanism": "mkg:IL6"})["mechanism"] == URIRef(expand("mkg:IL6"))
    with pytest.raises(QueryError, match="not an IRI"):
        SUITE["downstream-findings"].bind({"mechanism": "IL6> } ?s ?p ?o {"})


def test_a_parameter_value_is_a_term_not_query_text(stores):
    """An injection attempt is just a string that matches nothing."""
    rows = run(stores, "patient-criteria", patient='ex-sjia-mas" } UNION { ?p ?q ?r')
    assert rows == []


# ------------------------------------------------------------------ each query's answer
def test_why_abnormal_gives_the_reports_paths_with_their_sources(stores, reports, engine):
    rows = run(stores, "why-abnormal", patient="ex-sjia-mas", lab="ferritin")
    explanation = next(e for e in reports["ex-sjia-mas"]["explanations"] if e["finding"] == "ferritin")
    expected = set()
    for rank, path in enumerate(explanation["paths"], 1):
        for position, step in enumerate(path["steps"], 1):
            for source in step["sources"]:
                expected.add((rank, position, step["from_label"], step["sign"], step["to_label"], source))
    got = {(r["path"], r["position"], r["fromLabel"], r["sign"], r["toLabel"], r["source"]) for r in rows}
    assert got == expected and len(rows) == len(expected)
    assert {r["interpretation"] for r in rows} == {"high"}
    assert "hemophagocytosis" in {r["fromLabel"] for r in rows}
    assert {r["root"] for r in rows if r["path"] == 1} == {"systemic juvenile idiopathic arthritis"}


def test_upstream_mechanisms_match_reachability_in_the_causal_graph(stores, engine):
    kb = engine.kb
    graph = causal_graph(kb)
    node = next(t for t in kb.lab_tests.values() if t.notation == "ferritin").measures
    mechanisms = {t for t in nx.ancestors(graph, node) if kb.terms[t].kind == "Mechanism"}
    rows = run(stores, "upstream-mechanisms", finding="ferritin")
    assert {URIRef(r["mechanism"]) for r in rows} == {URIRef(expand(m)) for m in mechanisms}
    assert URIRef(expand("mkg:Hemophagocytosis")) in {URIRef(r["mechanism"]) for r in rows}


def test_downstream_findings_match_reachability(stores, engine):
    kb = engine.kb
    below = nx.descendants(causal_graph(kb), "mkg:Hemophagocytosis")
    expected = {t.notation for t in kb.lab_tests.values() if t.measures in below}
    expected |= {kb.terms[n].notation for n in below if kb.terms[n].kind == "ClinicalSign" and kb.terms[n].notation}
    rows = run(stores, "downstream-findings", mechanism="mkg:Hemophagocytosis")
    assert {r["finding"] for r in rows} == expected
    assert {"platelets", "hemoglobin", "ferritin"} <= expected


def test_findings_explained_by_a_mechanism_match_the_reports(stores, reports):
    expected = {(pid, e["finding"]) for pid, report in reports.items() for e in report["explanations"]
                if any("mkg:Hemophagocytosis" in (s["from"], s["to"]) for p in e["paths"] for s in p["steps"])}
    rows = run(stores, "findings-explained-by", mechanism="mkg:Hemophagocytosis")
    assert {(r["patient"], r["finding"]) for r in rows} == expected
    assert ("ex-sjia-mas", "platelets") in expected


def test_criteria_using_fibrinogen_are_the_ones_the_knowledge_base_has(stores, engine):
    expected = {c.id for c in engine.kb.criteria
                if any(i.analyte == "mkg:FibrinogenTest" for i in c.items.values())}
    rows = run(stores, "criteria-using-analyte", analyte="fibrinogen")
    assert {r["criteria"] for r in rows} == expected
    assert {"hlh2004", "mas2016", "hscore", "isth_dic"} <= expected
    mas = [r for r in rows if r["criteria"] == "mas2016"]
    assert [(r["comparator"], float(r["threshold"]), r["unit"]) for r in mas] == [("<=", 360.0, "mg/dL")]


def test_patient_criteria_are_the_reports_verdicts(stores, reports):
    rows = run(stores, "patient-criteria")
    assert {(r["patient"], r["criteria"], r["status"]) for r in rows} == \
        {(pid, c["id"], c["status"]) for pid, report in reports.items() for c in report["criteria"]}
    met = run(stores, "patient-criteria", patient="ex-sjia-mas", status="met")
    assert "mas2016" in {r["criteria"] for r in met} and {r["status"] for r in met} == {"met"}


def test_patient_candidates_carry_the_reports_evidence(stores, reports):
    rows = run(stores, "patient-candidates", patient="ex-sjia-mas", category="mas")
    mas = next(c for c in reports["ex-sjia-mas"]["candidates"] if c["category"] == "mas")
    assert {r["rank"] for r in rows} == {1} and {r["score"] for r in rows} == {mas["score"]}
    assert {r["rule"] for r in rows} == {e["rule"] for e in mas["evidence"]}
    assert {(r["rule"], r["source"]) for r in rows} == {(e["rule"], s) for e in mas["evidence"] for s in e["sources"]}


def test_therapies_upstream_of_fibrinogen_target_an_ancestor(stores, engine):
    graph = causal_graph(engine.kb)
    fibrinogen = next(t for t in engine.kb.lab_tests.values() if t.notation == "fibrinogen").measures
    labels = {term.label: term_id for term_id, term in engine.kb.terms.items()}
    rows = run(stores, "therapies-upstream", finding="fibrinogen")
    assert {"anakinra", "emapalumab", "cyclosporine"} <= {r["therapy"] for r in rows}
    for row in rows:
        assert fibrinogen in nx.descendants(graph, labels[row["target"]]), row


def test_labs_separating_mas_from_a_flare_move_in_opposite_directions(stores):
    rows = run(stores, "mas-vs-flare-labs")
    assert {(r["lab"], r["masDirection"], r["flareDirection"]) for r in rows} >= \
        {("platelets", "low", "high"), ("fibrinogen", "low", "high")}


def test_mas2016_without_hlh2004(stores, reports):
    expected = {pid for pid, report in reports.items()
                if {c["id"]: c["status"] for c in report["criteria"]}["mas2016"] == "met"
                and {c["id"]: c["status"] for c in report["criteria"]}["hlh2004"] != "met"}
    rows = run(stores, "mas2016-not-hlh2004")
    assert {r["patient"] for r in rows} == expected == {"ex-boundary-mas2016"}


def test_primary_hlh_genes_and_the_step_they_break(stores, engine):
    rows = run(stores, "primary-hlh-genes")
    genes = {r["gene"] for r in rows}
    assert {"PRF1", "UNC13D", "STXBP2", "STX11", "RAB27A", "LYST", "SH2D1A", "XIAP"} <= genes
    prf1 = [r for r in rows if r["gene"] == "PRF1"]
    assert {(r["step"], r["sign"]) for r in prf1} == {("perforin/granzyme-mediated cytotoxic killing", "+")}
    assert all(r["source"] for r in prf1)


def test_edges_without_a_source_are_none_and_an_unsourced_edge_is_found(stores, engine):
    assert run(stores, "qa-edges-without-source") == []
    query = SUITE["qa-edges-without-source"]
    for backend in BACKENDS:
        store = open_store(backend=backend, kb=engine.kb)
        store.add_nquads(f"<{expand('mkg:IL6')}> <{expand('RO:0002304')}> <{expand('mkg:Hepcidin')}> "
                         f"<{ONTOLOGY_GRAPH}> .\n"
                         f"<{expand('mkg:IL6')}> <{expand('RO:0002213')}> <{expand('mkg:Ferritin')}> "
                         f"<{ONTOLOGY_GRAPH}> .\n")
        rows = store.query(query.text).records()
        assert [(r["subject"], r["relation"], r["object"]) for r in rows] == \
            [(expand("mkg:IL6"), expand("RO:0002213"), expand("mkg:Ferritin"))], backend  # the other is sourced


def test_patient_alerts_are_the_reports_alerts(stores, reports):
    rows = run(stores, "patient-alerts", patient="ex-sjia-mas")
    assert {r["alert"] for r in rows} == {a["code"] for a in reports["ex-sjia-mas"]["alerts"]}
    assert ("esr-crp-discordance", "crp") in {(r["alert"], r["finding"]) for r in rows}


def test_item_provenance_points_at_the_observations_the_items_read(stores, reports):
    rows = run(stores, "item-provenance", patient="ex-sjia-mas", criteria="hlh2004")
    hlh = next(c for c in reports["ex-sjia-mas"]["criteria"] if c["id"] == "hlh2004")
    expected = {(i["id"], i["observation"]) for i in hlh["items"] if i.get("observation") is not None}
    assert {(r["item"], r["index"]) for r in rows} == expected and expected
    items = {o["index"]: o for o in reports["ex-sjia-mas"]["observations"]["items"]}
    for row in rows:
        assert row["code"] == items[row["index"]]["code"]


def test_what_was_inferred_from_one_observation(stores, reports):
    items = reports["ex-sjia-mas"]["observations"]["items"]
    index = next(o["index"] for o in items if o["code"] == "fibrinogen" and o["index"] == 42)
    rows = run(stores, "inferred-from-observation", patient="ex-sjia-mas", index=index)
    records = {r["record"] for r in rows}
    assert {"ex-sjia-mas/finding/fibrinogen", "ex-sjia-mas/criteria/mas2016/item/mas2016.fibrinogen",
            "ex-sjia-mas/explanation/fibrinogen"} <= records
    assert {r["graph"] for r in rows} == {"https://w3id.org/mas-kg/graph/patient/ex-sjia-mas/inferred"}


def test_abnormal_findings_and_their_path_counts(stores, reports):
    report = reports["ex-sjia-mas"]
    rows = run(stores, "abnormal-findings", patient="ex-sjia-mas")
    paths = {e["finding"]: len(e["paths"]) for e in report["explanations"]}
    expected = {(f["code"], paths.get(f["code"], 0)) for f in report["findings"]
                if f.get("interpretation") in ("high", "low") or f.get("present") is True}
    assert {(r["finding"], r["paths"]) for r in rows} == expected
    assert ("ferritin", paths["ferritin"]) in expected


# ------------------------------------------------------------------ the read-only guard and limits
@pytest.mark.parametrize("text", [
    "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
    "select * where { service silent ?endpoint { ?s ?p ?o } }",
    "SELECT * WHERE { \\u0053ERVICE <http://example.org/> { ?s ?p ?o } }",
    "SELECT * WHERE { ?s ?p ?o .SERVICE <http://example.org/> { ?a ?b ?c } }",
    "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
    "DELETE WHERE { ?s ?p ?o }",
    "LOAD <http://example.org/data.ttl>",
    "DROP ALL",
    "CLEAR GRAPH <urn:g>",
])
def test_updates_service_and_load_are_refused(text):
    with pytest.raises(QueryRefused):
        check_query(text)


@pytest.mark.parametrize("text", [
    'SELECT ?service WHERE { ?service mkr:code "LOAD" }',
    "SELECT * WHERE { ?s <http://example.org/service> ?o } # SERVICE in a comment",
    "SELECT * WHERE { ?s mkg:load ?o . ?o mkg:a-delete ?x }",
])
def test_names_strings_and_comments_are_not_keywords(text):
    check_query(text)


def test_an_over_long_query_is_refused():
    with pytest.raises(QueryRefused, match="characters long"):
        check_query("SELECT * WHERE { ?s ?p ?o }" + " " * 30_000)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_store_limits(stores, backend):
    store = stores[backend]
    with pytest.raises(ResultTooLarge, match="more than 10 rows"):
        store.query("SELECT * WHERE { ?s ?p ?o }", max_rows=10)
    with pytest.raises(QueryError, match="syntax"):
        store.query("SELECT * WHERE { ?s ?p }")
    with pytest.raises(QueryRefused):
        store.query("SELECT * WHERE { SERVICE <http://example.org/> { ?s ?p ?o } }")


def test_a_query_past_its_time_limit_times_out(stores):
    with pytest.raises(QueryTimeout, match="time limit of 0.2 s"):
        stores["oxigraph"].query("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }", timeout=0.2)
