"""Hostile labels are inert in a real browser: every HTML view the product writes, opened in chromium.

Extends tests/test_browser.py (same browser, offline, network blocked) with more payloads and more ways in:
the pages ``mas-kg explain --format html`` and ``mas-kg graph --patient`` write for a hostile patient, and a
view whose node ids, labels, definitions, synonyms, sources and title are all payloads.  Each payload tries to
run ``window.__pwned = 1`` or open a dialog; the tests type each into the search box, click the results, the
nodes, the edges and the findings, hover for tooltips, and then check nothing ran and the text is shown as text.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from kg.views import ViewEdge, ViewGraph, ViewNode, render
from test_browser import Opened, browser  # noqa: F401  (the module-scoped browser fixture)

pytestmark = pytest.mark.browser

PWN = "window.__pwned=1"
PAYLOADS = [
    f"<script>{PWN}</script>",
    f'<img src=x onerror="{PWN}">',
    f"javascript:{PWN}//",
    f'"><svg onload="{PWN}">',
    "'><iframe srcdoc='<script>parent.__pwned=1</script>'>",
    f"</style></script><script>{PWN}</script><!--",
    f"<a href=\"javascript:{PWN}\">click</a>",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",  # fullwidth look-alike brackets
    "\u202egpj.exe\u200b<b>\u2028\u2029</b>",  # right-to-left override, zero width space, JS line separators
    "${alert(1)}{{7*7}}<%= 7*7 %>",  # template syntaxes: must stay literal
    "__proto__",
    "constructor",
    "<details open ontoggle=alert(1)>" + "L" * 5000,  # a very long label
]
ELEMENTS = "document.querySelectorAll('script, img, svg, iframe, object, embed, a, style, link, base, meta').length"
HANDLERS = "Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => " \
           "a.name.startsWith('on') || (a.name !== 'data-code' && /^\\s*javascript:/i.test(a.value)))).length"


def watch(page: Opened) -> list[str]:
    """Record (and dismiss) every dialog the page opens: alert, confirm, prompt."""
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.page.on("dialog", on_dialog)
    return dialogs


def inert(page: Opened, dialogs: list[str], scripts: int) -> None:
    """Nothing ran, nothing was injected, the page logged no error and asked for nothing but itself."""
    assert page.js("window.__pwned") is None and page.js("typeof alert") == "function"
    assert dialogs == []
    assert page.js(ELEMENTS) == scripts  # only the page's own scripts, styles and meta; nothing injected
    assert page.js(HANDLERS) == 0  # no event-handler attribute, no javascript: URL in any attribute
    page.clean()


def hostile_graph() -> ViewGraph:
    """Every payload as a node id, label, definition, synonym, identifier and source, and in edge labels."""
    nodes = []
    for i, payload in enumerate(PAYLOADS):
        info = {"label": payload, "kind": payload, "definition": f"definition {payload}", "synonyms": [payload],
                "ids": [payload], "definition_source": payload, "supporting": [payload]}
        nodes.append(ViewNode(payload, payload, "Mechanism" if i % 2 else "Gene", "process", info,
                              x=260.0 * (i % 4), y=140.0 * (i // 4)))
    edges = [ViewEdge(f"e{i}", PAYLOADS[i], PAYLOADS[i + 1], "causal", 1 if i % 2 else -1,
                      {"relation": payload, "relation_label": payload, "sources": [payload], "claim": payload})
             for i, payload in enumerate(PAYLOADS[:-1])]
    return ViewGraph("knowledge", PAYLOADS[0], tuple(nodes), tuple(edges))


@pytest.fixture
def open_page(browser, tmp_path):  # noqa: F811
    pages: list[Opened] = []

    def open_(path) -> tuple[Opened, list[str], int]:
        pages.append(Opened(browser, path))
        # the page's own elements, counted before any interaction: 3 scripts (JSON data, vis-network, the view),
        # 2 styles and 4 meta (charset, viewport, CSP, generator); a payload parsed as HTML would add to them
        count = pages[-1].js(ELEMENTS)
        assert count == 9
        return pages[-1], watch(pages[-1]), count

    yield open_
    for page in pages:
        page.close()


def test_every_payload_is_searchable_clickable_and_inert(open_page, tmp_path):
    path = tmp_path / "hostile.html"
    path.write_text(render(hostile_graph()), encoding="utf-8")
    page, dialogs, scripts = open_page(path)
    assert page.page.title() == PAYLOADS[0] and page.page.inner_text("h1") == PAYLOADS[0]
    assert set(page.js("masKg.nodes.getIds()")) == set(PAYLOADS)
    # the very long label is cut on the canvas (a huge box would cover the graph), kept whole in the panel data
    assert len(page.js("id => masKg.nodes.get(id).label", PAYLOADS[-1])) == 80
    assert page.js("id => masKg.data.meta.nodes[id].label", PAYLOADS[-1]) == PAYLOADS[-1]
    for payload in PAYLOADS:
        page.page.fill("#search", payload)  # typed into the real search box, as a user would paste it
        page.page.press("#search", "Enter")
        assert page.js("masKg.selected()") == payload
        results = page.js("Array.from(document.querySelectorAll('#search-results li button'), b => b.textContent)")
        assert payload in results
        info = page.js("document.getElementById('info').textContent")
        assert payload in info and f"definition {payload}" in info
        page.page.click("#info li button >> nth=0")  # the first edge line in the node's panel
        assert payload in page.js("document.getElementById('info').textContent")
        page.page.click("#search-results li button >> nth=0")
        page.page.keyboard.press("Escape")
    for i in range(len(PAYLOADS) - 1):
        page.js("id => masKg.selectEdge(id)", f"e{i}")
        edge_info = page.js("document.getElementById('info').textContent")
        assert PAYLOADS[i] in edge_info and PAYLOADS[i + 1] in edge_info
    for payload in PAYLOADS[:4]:  # real mouse clicks and hovers on the canvas
        page.click_node(payload)
        assert page.js("masKg.selected()") == payload
        position = page.js("id => masKg.domPosition(id)", payload)
        box = page.page.locator("#graph").bounding_box()
        page.page.mouse.move(10, 10)
        page.page.mouse.move(box["x"] + position["x"] + 1, box["y"] + position["y"] + 1)
        page.page.wait_for_selector("div.vis-tooltip", state="visible", timeout=5_000)
        assert page.page.inner_text("div.vis-tooltip").startswith(payload[:40])
    inert(page, dialogs, scripts)


def hostile_patient() -> dict:
    """A patient whose id, conditions, medications and an observation's code and unit are payloads."""
    observations = [{"code": "ferritin", "value": 12000, "unit": "ng/mL", "time": "2024-05-01T08:00:00Z"},
                    {"code": "platelets", "value": 90, "unit": "10*9/L", "time": "2024-05-01T08:00:00Z"},
                    {"code": "fibrinogen", "value": 1.2, "unit": "g/L", "time": "2024-05-01T08:00:00Z"}]
    observations += [{"code": p, "value": 1, "unit": p, "time": "2024-05-01T08:00:00Z"} for p in PAYLOADS[:6]]
    return {"id": PAYLOADS[1], "age_years": 7.0, "sex": "female",
            "conditions": [{"code": "sJIA", "status": "confirmed"}] + [{"code": p, "status": "confirmed"}
                                                                       for p in PAYLOADS[2:5]],
            "medications": [{"code": p} for p in PAYLOADS[5:9]], "observations": observations}


@pytest.mark.parametrize("command", ["explain", "graph"])
def test_cli_pages_for_a_hostile_patient_are_inert(open_page, tmp_path, command):
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(hostile_patient()), encoding="utf-8")
    out = tmp_path / f"{command}.html"
    args = ["explain", "--format", "html"] if command == "explain" else ["graph", "--patient"]
    result = run_cli(*args, str(patient), "--out", str(out))
    assert result.returncode == 0, result.stderr
    page, dialogs, scripts = open_page(out)
    assert page.page.title() == f"mas-kg: patient {PAYLOADS[1]}"
    panel = page.js("document.getElementById('patient').textContent")
    for payload in PAYLOADS[1:9]:  # the id, the conditions, the medications, the rejected codes: as text
        assert payload in panel, payload
    findings = page.js("Array.from(document.querySelectorAll('#findings li'), li => li.dataset.code)")
    assert {"ferritin", "platelets", "fibrinogen"} <= set(findings)
    for code in findings:
        page.page.click(f"#findings li[data-code='{code}'] button")
        assert page.js("masKg.highlighted()")["nodes"]
    for details in page.page.query_selector_all("#patient details summary"):
        details.click()  # open the candidates' for/against lists
    page.page.fill("#search", "ferritin")
    page.page.press("#search", "Enter")
    assert page.js("masKg.selected()")
    inert(page, dialogs, scripts)


def test_cds_card_view_served_over_http_is_inert(browser):  # noqa: F811
    """The causal-graph page a CDS card links to, for a hostile FHIR prefetch, in the browser a clinician uses."""
    import httpx

    from test_cdshooks import SERVICE, hook_call, prefetch_of
    from test_server import start_server, stop_server

    process, url, stderr = start_server(["serve", "--port", "0", "--workers", "1"])
    base = url[: -len("/sparql")]
    try:
        patient = hostile_patient()
        body = json.dumps(hook_call(patient["id"], prefetch_of(patient))).encode()
        response = httpx.post(f"{base}/cds-services/{SERVICE}", content=body, timeout=60, trust_env=False,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        [card] = response.json()["cards"]
        [link] = card["links"]
        page = Opened(browser, link["url"])  # served: only that URL may load
        try:
            dialogs = watch(page)
            assert page.js(ELEMENTS) == 9
            assert PAYLOADS[1] in page.js("document.getElementById('patient').textContent")
            for code in page.js("Array.from(document.querySelectorAll('#findings li'), li => li.dataset.code)"):
                page.page.click(f"#findings li[data-code='{code}'] button")
            inert(page, dialogs, 9)
        finally:
            page.close()
    finally:
        stop_server(process, stderr)
