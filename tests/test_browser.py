"""The HTML views in a real browser: Debian's chromium driven by Playwright, over file://, network blocked.

Skipped when chromium or Playwright is missing, unless ``MAS_KG_REQUIRE_BROWSER=1`` (CI sets it), in
which case a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import kg
from conftest import EXAMPLES, HOSTILE, expected_knowledge_graph, hostile_patient
from kg.views import ViewEdge, ViewGraph, ViewNode, graph_view, render

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
PATIENTS = sorted(p.stem for p in EXAMPLES.glob("*.json") if p.stem != "expected")


@pytest.fixture(scope="module")
def browser():
    required = os.environ.get("MAS_KG_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail(f"MAS_KG_REQUIRE_BROWSER=1 but there is no chromium at {CHROMIUM}")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


class Opened:
    """A page opened offline: its console errors and warnings, uncaught errors, and every request it made.

    ``path`` is a file, or the URL of a page served over HTTP (then only that URL may load).
    """

    def __init__(self, browser, path: Path | str):
        served = isinstance(path, str)
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, offline=not served)
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.url = path if served else path.resolve().as_uri()

        def route(request_route):
            self.requests.append(request_route.request.url)
            url = request_route.request.url
            if url.startswith("data:") or (url == self.url if served else url.startswith("file:")):
                request_route.continue_()
            else:
                request_route.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.goto(self.url)
        self.page.wait_for_function("window.masKg && window.masKg.ready", timeout=20_000)

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def click_node(self, node_id: str) -> None:
        """A real mouse click on a node where the canvas draws it."""
        self.js("id => masKg.network.focus(id, {scale: 1.0, animation: false})", node_id)
        position = self.js("id => masKg.domPosition(id)", node_id)
        box = self.page.locator("#graph").bounding_box()
        self.page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])

    def clean(self) -> None:
        assert self.problems == []
        assert self.requests == [self.url]  # nothing but the file itself, not even a blocked attempt

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(browser, tmp_path):
    pages = []

    def open_(html: str, name: str = "page.html") -> Opened:
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        pages.append(Opened(browser, path))
        return pages[-1]

    yield open_
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def kb():
    return kg.load_knowledge()


@pytest.fixture(scope="module")
def reports(engine):
    return {name: engine.explain(EXAMPLES / f"{name}.json") for name in PATIENTS}


def test_knowledge_graph_opens_offline_settled_and_complete(opened, kb):
    page = opened(graph_view(kb=kb).html)
    page.clean()
    nodes, edge_count = expected_knowledge_graph(kb)
    assert page.js("masKg.nodes.length") == len(nodes) and page.js("masKg.edges.length") == edge_count
    assert set(page.js("masKg.nodes.getIds()")) == nodes
    before = page.js("masKg.network.getPositions()")
    page.page.wait_for_timeout(400)
    assert page.js("masKg.network.getPositions()") == before  # settled: nothing moves after the first drawing
    assert page.js("masKg.network.physics.physicsEnabled") is False
    legend = page.page.inner_text("#legend")
    assert "gene" in legend and "syndrome (candidate)" in legend and "causes a decrease" in legend


def test_clicking_a_node_shows_its_definition_ids_and_edge_sources(opened, kb):
    page = opened(graph_view(kb=kb).html)
    page.click_node("mkg:Ferritin")
    assert page.js("masKg.selected()") == "mkg:Ferritin"
    info = page.page.inner_text("#info")
    term = kb.terms["mkg:Ferritin"]
    assert term.definition in info and "mkg:Ferritin" in info and "LOINC:2276-4" in info
    incident = [e for e in kb.edges if "mkg:Ferritin" in (e.subject, e.object)]
    assert incident and all(source in info for e in incident for source in e.sources)
    highlighted = page.js("masKg.highlighted()")
    assert "mkg:Ferritin" in highlighted["nodes"] and len(highlighted["edges"]) == page.js(
        "masKg.edges.get().filter(e => e.from === 'mkg:Ferritin' || e.to === 'mkg:Ferritin').length")
    edge = page.js("masKg.edges.get().find(e => e.id.startsWith('c')).id")
    page.js("id => masKg.selectEdge(id)", edge)
    claim = page.js("id => masKg.data.meta.edges[id]", edge)
    edge_info = page.page.inner_text("#info")
    assert claim["claim"] in edge_info and all(s in edge_info for s in claim["sources"])
    page.clean()


def test_search_finds_by_label_and_synonym(opened, kb):
    page = opened(graph_view(kb=kb).html)
    page.page.fill("#search", "ferritin")
    page.page.press("#search", "Enter")
    assert page.js("masKg.selected()") == "mkg:Ferritin"  # the exact label wins over longer ones
    assert page.page.inner_text("#search-count").endswith("matches")
    page.page.fill("#search", "sCD25")
    page.page.press("#search", "Enter")
    assert page.js("masKg.selected()") in {"mkg:SolubleIL2R", "mkg:ElevatedSCD25"}
    page.page.fill("#search", "no such thing at all")
    assert page.page.inner_text("#search-count") == "0 matches"
    page.clean()


def chosen_path(page: Opened, explanation: dict, index: int = 0) -> dict:
    """The nodes and edge ids a path should light up, found from the report's steps in the page's edges."""
    edges = page.js("masKg.edges.get().map(e => [e.id, e.from, e.to])")
    by_ends = {(a, b): i for i, a, b in edges}
    steps = explanation["paths"][index]["steps"]
    finding = f"finding:{explanation['finding']}"
    nodes = {steps[0]["from"], finding} | {s["to"] for s in steps}
    ids = {by_ends[(s["from"], s["to"])] for s in steps} | {by_ends[(explanation["node"], finding)]}
    return {"nodes": sorted(nodes), "edges": sorted(ids)}


@pytest.mark.parametrize("name", PATIENTS)
def test_patient_view_selecting_each_finding_highlights_its_chain(opened, kb, reports, name):
    report = reports[name]
    page = opened(report.to_html())
    data = report.to_dict()
    graph = kg.views.patient_graph(kb, data)
    assert page.js("masKg.nodes.length") == len(graph.nodes) and page.js("masKg.edges.length") == len(graph.edges)
    for explanation in data["explanations"]:
        page.page.click(f"#findings li[data-code='{explanation['finding']}'] button")
        assert page.js("masKg.highlighted()") == chosen_path(page, explanation)
        info = page.page.inner_text("#info")
        assert all(source in info for step in explanation["paths"][0]["steps"] for source in step["sources"])
    criteria = page.page.inner_text("table.criteria")
    assert all(c["id"] in criteria for c in data["criteria"])
    page.clean()


def test_clicking_a_finding_in_the_graph_and_choosing_another_path(opened, reports):
    report = reports["sjia-mas"]
    page = opened(report.to_html())
    ferritin = next(e for e in report.to_dict()["explanations"] if e["finding"] == "ferritin")
    assert len(ferritin["paths"]) > 1
    page.click_node("finding:ferritin")
    assert page.js("masKg.selected()") == "finding:ferritin"
    assert page.js("masKg.highlighted()") == chosen_path(page, ferritin)
    assert "Why it is abnormal" in page.page.inner_text("#info")
    page.page.click("#info .paths button:nth-child(2)")
    assert page.js("masKg.highlighted()") == chosen_path(page, ferritin, 1)
    page.click_node("finding:ferritin")  # back to the chosen path
    assert page.js("masKg.highlighted()") == chosen_path(page, ferritin)
    page.page.mouse.click(5, 5)  # the header: nothing changes
    page.clean()


def test_hostile_text_is_shown_as_text_and_never_runs(opened, engine):
    report = engine.explain(hostile_patient())
    page = opened(report.to_html())
    assert page.page.title() == f"mas-kg: patient {HOSTILE[0]}"
    assert page.page.inner_text("#patient h2") == f"Patient {HOSTILE[0]}"
    panel = page.page.inner_text("#patient")
    assert HOSTILE[3] in panel and HOSTILE[2] in panel and "<img src=x onerror" in panel
    for finding in report.to_dict()["explanations"]:
        page.page.click(f"#findings li[data-code='{finding['finding']}'] button")
    assert page.js("window.__xss") is None
    assert page.js("document.querySelectorAll('img, svg, iframe, object, embed').length") == 0
    page.clean()

    nodes = (ViewNode("a" + HOSTILE[0], HOSTILE[1], "Gene", "cause", {"label": HOSTILE[1], "definition": HOSTILE[3]}),
             ViewNode("b", HOSTILE[2], "Mechanism", "process", {"label": HOSTILE[2]}, x=230.0))
    labels = opened(render(ViewGraph("knowledge", HOSTILE[4], nodes, (
        ViewEdge("e0", "a" + HOSTILE[0], "b", "causal", -1, {"sources": [HOSTILE[0]], "relation_label": HOSTILE[1]}),))),
        name="labels.html")
    labels.click_node("a" + HOSTILE[0])
    info = labels.page.inner_text("#info")
    assert HOSTILE[1] in info and HOSTILE[3] in info and HOSTILE[0] in info
    labels.page.mouse.move(10, 10)
    labels.click_node("b")
    position = labels.js("id => masKg.domPosition(id)", "b")
    box = labels.page.locator("#graph").bounding_box()
    labels.page.mouse.move(box["x"] + position["x"] + 1, box["y"] + position["y"] + 1)
    labels.page.wait_for_selector("div.vis-tooltip", state="visible", timeout=5_000)
    assert HOSTILE[2] in labels.page.inner_text("div.vis-tooltip")
    assert labels.js("window.__xss") is None and labels.js("parent.__xss") is None
    assert labels.js("document.querySelectorAll('img, svg, iframe').length") == 0
    labels.clean()


def test_notebook_frame_renders_the_view(browser, tmp_path, reports):
    """What Jupyter shows for a report: the page in a sandboxed iframe inside the notebook's own page."""
    report = reports["sjia-mas"]
    host = tmp_path / "notebook.html"
    host.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>notebook</title></head>"
                    f"<body><div class='output'>{report._repr_html_()}</div></body></html>", encoding="utf-8")
    context = browser.new_context(offline=True)
    try:
        page = context.new_page()
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.goto(host.as_uri())
        frame = page.wait_for_selector("iframe").content_frame()
        frame.wait_for_function("window.masKg && window.masKg.ready", timeout=20_000)
        assert frame.evaluate("masKg.nodes.length") == len(kg.views.patient_graph(kg.load_knowledge(),
                                                                                   report.to_dict()).nodes)
        frame.click("#findings li[data-code='ferritin'] button")
        assert "finding:ferritin" in frame.evaluate("masKg.highlighted()")["nodes"]
        assert page.evaluate("typeof window.masKg") == "undefined"  # the frame cannot reach the notebook
        assert problems == []
    finally:
        context.close()
