"""Self-contained HTML pages of the graph views, built with pyvis, with its gaps closed.

pyvis builds the vis-network data (nodes, edges, options).  Its own page
templates load Bootstrap from a CDN even in ``in_line`` mode and write a
``lib/`` folder into the working directory in ``local`` mode, so the page here
is rendered from our own template instead: vis-network's script and style
(shipped inside pyvis) and ours are inlined, the data travels as JSON in a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped,
every text reaches the DOM through ``textContent``, and a Content Security
Policy allows only the page's own scripts (by hash) and no network at all.
Nothing is written to disk unless :meth:`GraphView.save` is called.

>>> from kg import load_knowledge
>>> page = graph_view(kb=load_knowledge())
>>> page.html.startswith("<!DOCTYPE html>") and "https://cdn" not in page.html
True
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import jinja2
from markupsafe import Markup
from pyvis.network import Network

from ..atomic import write_text_atomic
from .model import KIND_LABELS, ViewGraph, knowledge_graph, patient_graph

if TYPE_CHECKING:
    from ..knowledge import KnowledgeBase
    from ..report import Report

__all__ = ["GraphView", "graph_view", "render", "KIND_STYLES", "EDGE_COLOURS"]

VIS_VERSION = "9.1.2"
# Fill and border per kind (light fills, so edge colours stay readable).
KIND_STYLES = {
    "Gene": ("#e4d2f7", "#7b4fa8"),
    "Disease": ("#f6c1c1", "#a33b3b"),
    "Trigger": ("#ffdcae", "#b8731b"),
    "Therapy": ("#c6ebc6", "#3f8f3f"),
    "CellType": ("#cfe6f7", "#3a78a8"),
    "MolecularEntity": ("#fff4b3", "#a89020"),
    "Mechanism": ("#e3e3e3", "#6b6b6b"),
    "PhysiologicalQuantity": ("#d9f0e6", "#4c8f73"),
    "ClinicalSign": ("#ffd3e6", "#b04a7a"),
    "LabSign": ("#ffe2c6", "#b5651d"),
    "Finding": ("#ffffff", "#222222"),
    "Syndrome": ("#9fdcd2", "#1f7a6d"),
}
EDGE_COLOURS = {1: "#0072b2", -1: "#d55e00"}  # Okabe-Ito blue and vermillion: safe for red-green colour blindness
FINDING_BORDERS = {"high": "#b2182b", "present": "#b2182b", "low": "#2166ac"}
OPTIONS: dict[str, Any] = {
    "physics": {"enabled": False},
    "layout": {"improvedLayout": False, "hierarchical": {"enabled": False}},
    "interaction": {"hover": True, "tooltipDelay": 200, "multiselect": False, "dragNodes": True},
    "nodes": {"shape": "box", "margin": 7, "borderWidthSelected": 3, "widthConstraint": {"maximum": 180}, "font": {"size": 15},
              "scaling": {"label": {"drawThreshold": 3}}},
    "edges": {"smooth": {"enabled": True, "type": "cubicBezier", "forceDirection": "horizontal", "roundness": 0.45},
              "arrows": {"to": {"enabled": True, "scaleFactor": 0.6}}},
}


def _asset(name: str) -> str:
    return resources.files("kg.views").joinpath("assets", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _assets() -> dict[str, str]:
    vis = resources.files("pyvis").joinpath("templates", "lib", f"vis-{VIS_VERSION}")
    vis_js = vis.joinpath("vis-network.min.js").read_text(encoding="utf-8")
    # The source-map comment names a file that is not shipped; developer tools would look for it.
    vis_js = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "\n", vis_js)
    assets = {"vis_js": vis_js,
              "vis_css": vis.joinpath("vis-network.css").read_text(encoding="utf-8"),
              "view_js": _asset("view.js"), "view_css": _asset("view.css"), "page": _asset("page.html")}
    for name in ("vis_js", "view_js"):
        if "</script" in assets[name].lower():
            raise RuntimeError(f"{name} contains '</script' and cannot be inlined")
    for name in ("vis_css", "view_css"):
        if "</style" in assets[name].lower():
            raise RuntimeError(f"{name} contains '</style' and cannot be inlined")
    assets["csp"] = _csp(assets["vis_js"], assets["view_js"])
    return assets


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(_assets()["page"])


def _csp(*scripts: str) -> str:
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
                      for s in scripts)
    # No default source: no fetch, no frame, no font, no form target; images only as data: URLs (vis' icons).
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data: blob:; "
            "base-uri 'none'; form-action 'none'")


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment, whatever strings it holds."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


LABEL_MAX = 80  # characters drawn on the canvas; the panel, tooltip and search keep the whole label


def _canvas_label(label: str) -> str:
    """A label short enough to draw: a very long one (an unbroken word is never wrapped) would draw a box that
    covers the graph and takes the clicks meant for other nodes."""
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "\u2026"


def _network(graph: ViewGraph) -> Network:
    """The pyvis network of a laid-out view graph (positions fixed, physics off)."""
    net = Network(directed=True, height="100%", width="100%", cdn_resources="in_line")
    for node in graph.nodes:
        background, border = KIND_STYLES.get(node.kind, ("#ffffff", "#444444"))
        options: dict[str, Any] = {}
        if node.kind == "Finding":
            border = FINDING_BORDERS.get(str(node.info.get("interpretation")), border)
            options["borderWidth"] = 2.5
            options["font"] = {"size": 15, "bold": {"color": "#000"}, "color": "#000000"}
        elif node.kind == "Syndrome":
            options["borderWidth"] = 2
            options["font"] = {"size": 16, "color": "#0b3d36"}
        else:
            options["borderWidth"] = 1
            options["font"] = {"size": 15, "color": "#1d1d1d"}
        net.add_node(node.id, label=_canvas_label(node.label), shape="box",
                     color={"background": background, "border": border,
                            "highlight": {"background": background, "border": "#000000"},
                            "hover": {"background": background, "border": "#000000"}},
                     x=round(node.x, 1), y=round(node.y, 1), physics=False, **options)
    for edge in graph.edges:
        colour = EDGE_COLOURS[edge.sign]
        causal = edge.category == "causal"
        net.add_edge(edge.source, edge.target, id=edge.id,
                     color={"color": colour, "highlight": colour, "hover": colour, "opacity": 0.9},
                     width=2 if causal else 1.2, dashes=False if causal else [3, 4],
                     arrows={"to": {"enabled": True, "type": "arrow" if edge.sign > 0 else "bar"}})
    net.options = OPTIONS
    return net


def _legend(graph: ViewGraph) -> dict[str, list[dict[str, Any]]]:
    kinds = {n.kind for n in graph.nodes}
    node_keys = [{"label": label, "background": KIND_STYLES[kind][0], "border": KIND_STYLES[kind][1]}
                 for kind, label in KIND_LABELS.items() if kind in kinds]
    categories = {e.category for e in graph.edges}
    edge_keys = [{"label": "causes an increase (+): arrow head", "color": EDGE_COLOURS[1], "dashes": False},
                 {"label": "causes a decrease (\u2212): bar head", "color": EDGE_COLOURS[-1], "dashes": False}]
    if "measure" in categories:
        edge_keys.append({"label": "quantity high (+) or low (\u2212) is this lab sign", "color": "#555555",
                          "dashes": True})
    if "observed" in categories:
        edge_keys.append({"label": "observed in the patient: high (+) or low (\u2212)", "color": "#555555",
                          "dashes": True})
    if "evidence" in categories:
        edge_keys.append({"label": "evidence for (+) or against (\u2212) a syndrome", "color": "#555555",
                          "dashes": True})
    return {"nodes": node_keys, "edges": edge_keys}


def _meta(graph: ViewGraph) -> dict[str, Any]:
    return {"nodes": {n.id: dict(n.info, label=n.info.get("label", n.label)) for n in graph.nodes},
            "edges": {e.id: dict(e.info, category=e.category, sign=e.sign) for e in graph.edges}}


def render(graph: ViewGraph) -> str:
    """The self-contained HTML page of a laid-out view graph."""
    assets = _assets()
    nodes, edges, _, _, _, options = _network(graph).get_network_data()
    payload = {"view": graph.view, "title": graph.title, "nodes": nodes, "edges": edges,
               "options": json.loads(options), "meta": _meta(graph), "legend": _legend(graph),
               "panel": graph.panel}
    from .. import __version__

    return _template().render(
        title=graph.title, view=graph.view, version=__version__, vis_version=VIS_VERSION,
        pyvis_version=metadata.version("pyvis"), csp=assets["csp"],
        vis_css=Markup(assets["vis_css"]), view_css=Markup(assets["view_css"]),
        vis_js=Markup(assets["vis_js"]), view_js=Markup(assets["view_js"]),
        data_json=Markup(_json_for_script(payload)))


@dataclass(frozen=True)
class GraphView:
    """An HTML graph page: ``html`` is the whole document.

    In a Jupyter notebook the object displays itself in a sandboxed frame
    (scripts allowed, no access to the notebook).
    """

    html: str
    title: str

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` atomically (a temporary file renamed into place) and return it."""
        return write_text_atomic(path, self.html)

    def notebook_frame(self, *, height: int = 720) -> str:
        """An ``<iframe srcdoc>`` holding the page, sandboxed to scripts only (what Jupyter displays)."""
        return (f'<iframe title="{html.escape(self.title)}" sandbox="allow-scripts" '
                f'style="width:100%;height:{int(height)}px;border:1px solid #ddd" '
                f'srcdoc="{html.escape(self.html, quote=True)}"></iframe>')

    def _repr_html_(self) -> str:
        return self.notebook_frame()

    def __str__(self) -> str:
        return self.html


def graph_view(*, kb: "KnowledgeBase | None" = None, report: "Report | Mapping[str, Any] | None" = None) -> GraphView:
    """The knowledge-graph explorer, or with ``report`` that patient's explanation view.

    ``report`` is a :class:`kg.Report` or its JSON object; ``kb`` defaults to the installed ontology.
    """
    if kb is None:
        from ..knowledge import load_knowledge

        kb = load_knowledge()
    if report is None:
        graph = knowledge_graph(kb)
    else:
        data = report.to_dict() if hasattr(report, "to_dict") else report
        graph = patient_graph(kb, data)
    return GraphView(render(graph), graph.title)
