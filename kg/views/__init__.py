"""Interactive HTML graph views: the knowledge-graph explorer and a patient's explanations.

``model`` decides what is drawn, ``layout`` where, and ``page`` renders the
self-contained HTML (pyvis data, vis-network inlined, no network).
"""

from .model import ViewEdge, ViewGraph, ViewNode, knowledge_graph, patient_graph
from .page import GraphView, graph_view, render

__all__ = ["GraphView", "graph_view", "render", "ViewGraph", "ViewNode", "ViewEdge", "knowledge_graph",
           "patient_graph"]
