"""The HTML graph views without a browser: what is drawn, where, and what the page file contains."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import networkx as nx
import pytest

import kg
from conftest import EXAMPLES, HOSTILE, expected_knowledge_graph, hostile_patient
from conftest import run_cli as run
from kg.views import ViewEdge, ViewGraph, ViewNode, graph_view, knowledge_graph, patient_graph, render

# The only absolute URLs in a page: vis-network's licence and attribution strings, the SVG namespace it
# passes to createElementNS, and an error message of its uuid dependency.  None is ever fetched.
VENDORED_URLS = {
    "http://almende.com", "http://opensource.org/licenses/MIT", "http://www.apache.org/licenses/LICENSE-2.0",
    "http://www.w3.org/2000/svg", "https://github.com/uuidjs/uuid#getrandomvalues-not-supported",
    "https://github.com/visjs", "https://github.com/zloirock/core-js",
    "https://github.com/zloirock/core-js/blob/v3.21.1/LICENSE", "https://visjs.github.io/vis-network/",
}


@pytest.fixture(scope="module")
def kb():
    return kg.load_knowledge()


@pytest.fixture(scope="module")
def reports(engine):
    return {path.stem: engine.explain(path) for path in sorted(EXAMPLES.glob("*.json")) if path.stem != "expected"}


class Elements(HTMLParser):
    """The start tags of a page as a browser's tokenizer sees them (script and style bodies are text)."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="mas-kg-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_knowledge_graph_holds_every_edge_with_its_sources(kb):
    graph = knowledge_graph(kb)
    nodes, edge_count = expected_knowledge_graph(kb)
    assert {n.id for n in graph.nodes} == nodes
    assert len(graph.edges) == edge_count
    drawn = {(e.source, e.target, e.info["relation"]): e for e in graph.edges if e.category == "causal"}
    assert len(drawn) == len(kb.edges)
    for edge in kb.edges:
        view = drawn[(edge.subject, edge.object, edge.relation)]
        assert view.sign == edge.sign and view.info["sources"] == list(edge.sources) and edge.sources
    for edge in graph.edges:
        assert edge.info["sources"] and all(edge.info["sources"]), edge


def test_layout_is_layered_deterministic_and_without_overlap(kb):
    graph = knowledge_graph(kb)
    again = knowledge_graph(kb)
    assert [(n.id, n.x, n.y) for n in graph.nodes] == [(n.id, n.x, n.y) for n in again.nodes]
    x = {n.id: n.x for n in graph.nodes}
    digraph = nx.DiGraph((e.source, e.target) for e in graph.edges)
    for edge in graph.edges:  # every edge points right unless it closes a cycle
        if x[edge.source] >= x[edge.target]:
            assert nx.has_path(digraph, edge.target, edge.source), edge
    by_kind = {}
    for node in graph.nodes:
        by_kind.setdefault(node.kind, set()).add(node.x)
    assert by_kind["Gene"] == {0.0} and by_kind["Therapy"] == {0.0}
    right = max(x.values())
    assert by_kind["Syndrome"] == {right} and by_kind["LabSign"] == {sorted(set(x.values()))[-2]}
    columns = {}
    for node in graph.nodes:
        columns.setdefault(node.x, []).append(node)
    for column in columns.values():
        column.sort(key=lambda n: n.y)
        for upper, lower in zip(column, column[1:]):
            assert lower.y - upper.y >= 45, (upper.id, lower.id)


def test_patient_graph_draws_each_reported_path(kb, reports):
    for name, report in reports.items():
        data = report.to_dict()
        graph = patient_graph(kb, data)
        nodes = {n.id for n in graph.nodes}
        edges = {e.id: e for e in graph.edges}
        panel = {f["code"]: f for f in graph.panel["findings"]}
        assert list(panel) == [e["finding"] for e in data["explanations"]] + data["unexplained"], name
        for explanation in data["explanations"]:
            finding = panel[explanation["finding"]]
            assert f"finding:{explanation['finding']}" in nodes
            assert [p["text"] for p in finding["paths"]] == [p["text"] for p in explanation["paths"]]
            for path, drawn in zip(explanation["paths"], finding["paths"]):
                steps = [(edges[i].source, edges[i].target, edges[i].sign) for i in drawn["edges"][:-1]]
                assert steps == [(s["from"], s["to"], 1 if s["sign"] == "+" else -1) for s in path["steps"]]
                assert [edges[i].info["sources"] for i in drawn["edges"][:-1]] == [s["sources"] for s in path["steps"]]
                assert set(drawn["nodes"]) <= nodes
        assert {c["node"] for c in graph.panel["candidates"]} == {c["term"] for c in data["candidates"]}
        assert [c["status"] for c in graph.panel["criteria"]] == [c["status"] for c in data["criteria"]]


def test_finding_nodes_show_value_unit_and_direction(kb, reports):
    graph = patient_graph(kb, reports["sjia-mas"].to_dict())
    labels = {n.id: n.label for n in graph.nodes}
    assert labels["finding:ferritin"] == "ferritin 14500 ng/mL (high)"
    assert labels["finding:platelets"] == "platelets 110 10*9/L (low)"
    assert labels["finding:splenomegaly"] == "splenomegaly present (3 cm)"


def test_page_is_self_contained(kb):
    page = graph_view(kb=kb).html
    tags = Elements(page).tags
    assert not {"link", "iframe", "img", "object", "embed", "base", "svg"} & set(tags)
    assert tags.count("script") == 3 and tags.count("style") == 2
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert "sourceMappingURL" not in page
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page, re.I)
    assert set(re.findall(r"https?://[^\s\"'<>()\\]+", page)) <= VENDORED_URLS
    assert "cdnjs" not in page and "jsdelivr" not in page and "bootstrap" not in page.lower()


def test_content_security_policy_allows_only_the_pages_own_scripts(kb):
    page = graph_view(kb=kb).html
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1))
    assert "default-src 'none'" in csp and "connect-src" not in csp  # connections fall back to none
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 2
    hashes = set(re.findall(r"'sha256-([^']+)'", csp))
    assert hashes == {base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts}


def test_hostile_text_stays_data(engine, kb):
    report = engine.explain(hostile_patient())
    page = report.to_html()
    tags = Elements(page).tags
    assert tags.count("script") == 3 and page.count("</script>") == 3  # the JSON data block and the two scripts
    assert not {"img", "svg", "iframe"} & set(tags) and "<img" not in page and "<iframe" not in page
    data = page_data(page)
    assert data["panel"]["patient"] == HOSTILE[0]
    assert {r["code"] for r in data["panel"]["rejected"]} == {HOSTILE[3], "fibrinogen"}  # unknown code; unit
    assert any("<img src=x onerror" in note for note in data["panel"]["notes"])
    assert data["panel"]["medications"] == [HOSTILE[2]]
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert "<" not in title and html.unescape(title) == f"mas-kg: patient {HOSTILE[0]}"
    label = ViewGraph("knowledge", HOSTILE[1], (ViewNode("a" + HOSTILE[0], HOSTILE[4], "Gene", "cause"),
                                                ViewNode("b", HOSTILE[2], "Mechanism", "process", x=230)),
                      (ViewEdge("e0", "a" + HOSTILE[0], "b", "causal", 1, {"sources": [HOSTILE[3]]}),))
    rendered = render(label)
    assert "<img" not in rendered and rendered.count("</script>") == 3 and Elements(rendered).tags.count("script") == 3
    assert page_data(rendered)["nodes"][0]["label"] == HOSTILE[4]


def test_notebook_frame_is_sandboxed_and_holds_the_page(reports):
    report = reports["sjia-mas"]
    frame = report._repr_html_()
    assert frame.startswith("<iframe ") and 'sandbox="allow-scripts"' in frame and "allow-same-origin" not in frame
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    assert html.unescape(srcdoc) == report.to_html()


def test_cli_writes_only_where_asked(tmp_path):
    result = run("graph", "--out", "kg.html", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kg.html"]
    assert page_data((tmp_path / "kg.html").read_text())["view"] == "knowledge"
    patient = str(EXAMPLES / "sjia-mas.json")
    assert run("explain", patient, "--format", "html", "--out", "a.html", cwd=tmp_path).returncode == 0
    assert run("graph", "--patient", patient, "--out", "b.html", cwd=tmp_path).returncode == 0
    assert (tmp_path / "a.html").read_text() == (tmp_path / "b.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html", "kg.html"]
    assert (tmp_path / "kg.html").stat().st_mode & 0o044 == 0o044  # readable by others (umask 022), not 0600
    stdout = run("graph", cwd=tmp_path)
    assert stdout.returncode == 0 and stdout.stdout == (tmp_path / "kg.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["graph", "--patient", "missing.json"], "missing.json"),
    (["graph", "--out", "no/such/dir/kg.html"], "--out no/such/dir/kg.html: cannot write there"),
    (["graph", "--out", "."], "--out .: is a directory"),
    (["graph", "--window", "24"], "--window applies to a patient: add --patient FILE"),
    (["explain", str(EXAMPLES / "sjia-mas.json"), "--format", "html", "--out", "nowhere/r.html"], "cannot write there"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_graph_view_writes_nothing_until_saved(tmp_path, monkeypatch, kb):
    monkeypatch.chdir(tmp_path)
    view = graph_view(kb=kb)
    assert list(tmp_path.iterdir()) == []
    target = view.save(tmp_path / "out.html")
    assert target.read_text() == view.html and sorted(p.name for p in tmp_path.iterdir()) == ["out.html"]
    assert Path(target).stat().st_size > 400_000  # vis-network is inlined
