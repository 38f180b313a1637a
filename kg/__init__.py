"""mas-kg: a knowledge-graph reasoning engine for MAS and HLH.

The public API is what ``__all__`` lists; everything else may change.

>>> import kg
>>> kg.Engine().kb.criteria_set("hlh2004").label
'HLH-2004 diagnostic criteria'
"""

from .engine import Engine
from .errors import InputError, OntologyError
from .explain_alert import explain_alert
from .knowledge import KnowledgeBase, load_knowledge
from .report import SCHEMA, Report
from .views import GraphView, graph_view

__all__ = ["Engine", "explain_alert", "Report", "KnowledgeBase", "InputError", "OntologyError", "load_knowledge", "SCHEMA",
           "GraphView", "graph_view", "__version__"]
__version__ = "0.1.0"
