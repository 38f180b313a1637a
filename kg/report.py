"""The report (contract v1, DESIGN.md section 4) and its JSON and text forms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import rdflib

__all__ = ["Report", "SCHEMA", "merged_rdf"]

SCHEMA = "mas-kg/report/v1"


@dataclass(frozen=True)
class Report:
    """A patient's evaluated report; ``to_dict()`` is the JSON contract object."""

    data: dict[str, Any] = field(repr=False)

    @property
    def patient(self) -> str:
        return self.data["patient"]

    def criterion(self, criterion_id: str) -> dict[str, Any]:
        return next(c for c in self.data["criteria"] if c["id"] == criterion_id)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.data))

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, ensure_ascii=False)

    def to_nquads(self) -> str:
        """The report as N-Quads: the patient's asserted and inferred named graphs (see :mod:`kg.rdf`)."""
        from .rdf import report_nquads

        return report_nquads(self.data)

    def to_rdf(self) -> "rdflib.Dataset":
        """The report as an :class:`rdflib.Dataset` with two named graphs, asserted and inferred, with PROV.

        The vocabulary is ``ontology/report.ttl``; :func:`kg.rdf.graph_iris` names the graphs.
        """
        return _dataset(self.to_nquads())

    def serialize(self, format: str) -> str:
        """The report as RDF text: ``turtle`` (all triples, one graph), ``trig`` or ``nquads`` (named graphs)."""
        return merged_rdf([self], format)

    def to_html(self) -> str:
        """The patient's interactive explanation graph: a self-contained HTML page (see :mod:`kg.views`)."""
        from .views import graph_view

        return graph_view(report=self.data).html

    def _repr_html_(self) -> str:  # Jupyter: the explanation graph in a sandboxed frame
        from .views import graph_view

        return graph_view(report=self.data).notebook_frame()

    def to_text(self) -> str:
        """A short consult note (see :mod:`kg.consult`)."""
        from .consult import consult_note

        return consult_note(self.data)


def merged_rdf(reports: "list[Report]", format: str) -> str:
    """Several reports as one RDF document: ``nquads`` or ``trig`` keep each patient's named graphs,
    ``turtle`` merges every triple into one graph."""
    nquads = "".join(report.to_nquads() for report in reports)
    if format == "nquads":
        return nquads
    dataset = _dataset(nquads)
    if format == "turtle":
        import rdflib

        graph = rdflib.Graph()
        for prefix, namespace in dataset.namespaces():
            graph.bind(prefix, namespace)
        for subject, predicate, obj, _ in dataset.quads((None, None, None, None)):
            graph.add((subject, predicate, obj))
        return graph.serialize(format="turtle")
    if format == "trig":
        return dataset.serialize(format="trig")
    raise ValueError(f"unknown RDF format {format!r} (turtle, trig, nquads)")


def _dataset(nquads: str) -> "rdflib.Dataset":
    import rdflib

    from .rdf import PREFIXES

    dataset = rdflib.Dataset()
    for prefix, namespace in PREFIXES.items():
        dataset.bind(prefix, namespace)
    dataset.parse(data=nquads, format="nquads")
    return dataset
