"""SPARQL stores behind one interface: Oxigraph (embedded, the default) and rdflib's in-memory store.

A store holds the ontology (graph ``mkg:graph/ontology``), the ontology's
causal edges as named resources (``mkg:graph/causal-edges``) and any number of
patient reports (each an asserted and an inferred graph, :mod:`kg.rdf`).
Queries see the union of all graphs as their default graph; ``GRAPH ?g``
reaches the named graphs.  Both backends return the same
:class:`QueryResult`: rdflib terms, strings as plain literals, numbers in
canonical lexical form, so that results compare equal across backends.

Every query passes :func:`kg.sparql.check_query` first (no update, ``SERVICE``
or ``LOAD``).  ``timeout`` stops *waiting* for an in-process query (the
server enforces its limit by killing a worker process, :mod:`kg.querypool`).

>>> import kg
>>> store = open_store()
>>> store.add_report(kg.Engine().explain("examples/patients/sjia-mas.json"))
>>> result = store.query("SELECT ?status WHERE { ?v mkr:code 'mas2016' ; mkr:status ?status }")
>>> [str(row[0]) for row in result.rows]
['met']
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

from rdflib import BNode, Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Identifier

from .errors import InputError, QueryError, QueryTimeout, ResultTooLarge
from .knowledge import KnowledgeBase, load_knowledge, ontology_files
from .rdf import ONTOLOGY_GRAPH, PREFIXES, canonical_decimal, edges_nquads, report_nquads
from .sparql import MAX_QUERY_LENGTH, check_query

__all__ = ["QueryResult", "Store", "OxigraphStore", "RdflibStore", "BACKENDS", "open_store", "normalise"]

_PROLOGUE = "".join(f"PREFIX {prefix}: <{namespace}>\n" for prefix, namespace in PREFIXES.items())
_NUMERIC = {str(XSD.integer), str(XSD.decimal), str(XSD.double), str(XSD.float)}


@dataclass(frozen=True)
class QueryResult:
    """A query's answer: ``kind`` is ``select`` (variables, rows), ``ask`` (boolean) or ``graph`` (triples)."""

    kind: str
    variables: tuple[str, ...] = ()
    rows: tuple[tuple[Identifier | None, ...], ...] = ()
    boolean: bool | None = None
    triples: tuple[tuple[Identifier, Identifier, Identifier], ...] = ()

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts of Python values (IRIs as strings, literals as their Python value)."""
        return [{v: (None if t is None else str(t) if not isinstance(t, Literal) else t.toPython())
                 for v, t in zip(self.variables, row)} for row in self.rows]


def normalise(term: Identifier | None) -> Identifier | None:
    """One form for a term whichever backend produced it.

    >>> normalise(Literal("14500.0", datatype=XSD.decimal)), normalise(Literal("x", datatype=XSD.string))
    (rdflib.term.Literal('14500', datatype=rdflib.term.URIRef('http://www.w3.org/2001/XMLSchema#decimal')), rdflib.term.Literal('x'))
    """
    if not isinstance(term, Literal):
        return term
    datatype = str(term.datatype) if term.datatype else None
    if datatype == str(XSD.string):
        return Literal(str(term))
    if datatype in _NUMERIC:
        try:
            number = Decimal(str(term))
        except InvalidOperation:
            return term
        if datatype == str(XSD.integer):
            return Literal(str(int(number)), datatype=XSD.integer)
        if datatype == str(XSD.decimal):
            return Literal(canonical_decimal(number), datatype=XSD.decimal)
        return Literal(repr(float(number)), datatype=term.datatype)
    if datatype == str(XSD.boolean):
        return Literal(str(term).strip() in ("true", "1"))
    return term


class Store(ABC):
    """A SPARQL store of the ontology and patient reports (read-only to queries)."""

    backend: ClassVar[str]

    def __init__(self) -> None:
        self.patients: dict[str, str] = {}  # patient id -> where it came from

    # -- loading
    def add_ontology(self, *, kb: KnowledgeBase | None = None, directory: Path | None = None) -> None:
        """Load the ontology's Turtle files into the ontology graph, and its causal edges as resources."""
        for path in ontology_files(directory):
            self._load_turtle(path, ONTOLOGY_GRAPH)
        kb = kb or load_knowledge(directory)
        self.add_nquads(edges_nquads(kb.edges))

    def add_report(self, report: Any, *, where: str | None = None) -> None:
        """Add a patient's report (a :class:`kg.Report` or its dict); a patient id may be added once."""
        data = report.data if hasattr(report, "data") else report
        pid = data["patient"]
        if pid in self.patients:
            raise InputError(f"patient id {pid!r} is already in the store (from {self.patients[pid]})", where=where)
        self.add_nquads(report_nquads(data))
        self.patients[pid] = where or "a report"

    @abstractmethod
    def add_nquads(self, text: str) -> None:
        """Add N-Quads text."""

    @abstractmethod
    def _load_turtle(self, path: Path, graph: str) -> None: ...

    @abstractmethod
    def dump(self) -> str:
        """Every quad as N-Quads (to hand the store to a worker process)."""

    @abstractmethod
    def __len__(self) -> int: ...

    # -- querying
    def query(self, text: str, *, bindings: Mapping[str, Identifier] | None = None, timeout: float | None = None,
              max_rows: int | None = None, max_length: int = MAX_QUERY_LENGTH) -> QueryResult:
        """Run a read-only SPARQL query with parameters bound as terms.

        The prefixes of :data:`kg.rdf.PREFIXES` are predeclared.  Raises
        :class:`~kg.errors.QueryRefused` for updates, ``SERVICE`` or ``LOAD``,
        :class:`~kg.errors.QueryError` for a syntax error,
        :class:`~kg.errors.QueryTimeout` past ``timeout`` seconds and
        :class:`~kg.errors.ResultTooLarge` beyond ``max_rows`` rows.
        Parameters must be projected variables (Oxigraph substitutes only those).
        """
        check_query(text, max_length=max_length)
        bindings = dict(bindings or {})
        if timeout is None:
            return self._run(text, bindings, max_rows)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = self._run(text, bindings, max_rows)
            except BaseException as error:  # handed to the caller's thread
                box["error"] = error

        thread = threading.Thread(target=work, daemon=True, name="mas-kg-query")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise QueryTimeout(f"the query ran past its time limit of {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    @abstractmethod
    def _run(self, text: str, bindings: dict[str, Identifier], max_rows: int | None) -> QueryResult: ...


def _too_many(max_rows: int | None, count: int) -> None:
    if max_rows is not None and count > max_rows:
        raise ResultTooLarge(f"the result has more than {max_rows} rows; add a LIMIT or narrow the query")


class OxigraphStore(Store):
    """The default store: Oxigraph in memory (Rust; fast joins and property paths)."""

    backend = "oxigraph"

    def __init__(self) -> None:
        import pyoxigraph

        super().__init__()
        self._ox = pyoxigraph
        self._store = pyoxigraph.Store()

    def add_nquads(self, text: str) -> None:
        self._store.load(text.encode("utf-8"), format=self._ox.RdfFormat.N_QUADS)

    def _load_turtle(self, path: Path, graph: str) -> None:
        self._store.load(path=str(path), format=self._ox.RdfFormat.TURTLE, to_graph=self._ox.NamedNode(graph))

    def dump(self) -> str:
        return self._store.dump(format=self._ox.RdfFormat.N_QUADS).decode("utf-8")

    def __len__(self) -> int:
        return len(self._store)

    def _term(self, term: Identifier) -> Any:
        ox = self._ox
        if isinstance(term, URIRef):
            return ox.NamedNode(str(term))
        if isinstance(term, Literal):
            if term.language:
                return ox.Literal(str(term), language=term.language)
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)) if term.datatype else None)
        raise QueryError(f"cannot bind {term!r}: only IRIs and literals can be parameters")

    def _back(self, term: Any) -> Identifier | None:
        ox = self._ox
        if term is None:
            return None
        if isinstance(term, ox.NamedNode):
            return URIRef(term.value)
        if isinstance(term, ox.BlankNode):
            return BNode(term.value)
        if isinstance(term, ox.Literal):
            if term.language:
                return Literal(term.value, lang=term.language)
            return normalise(Literal(term.value, datatype=URIRef(term.datatype.value)))
        raise QueryError(f"unsupported term in a result: {term!r}")

    def _run(self, text: str, bindings: dict[str, Identifier], max_rows: int | None) -> QueryResult:
        ox = self._ox
        try:
            answer = self._store.query(_PROLOGUE + text, use_default_graph_as_union=True,
                                       substitutions={ox.Variable(k): self._term(v) for k, v in bindings.items()})
        except SyntaxError as error:
            raise QueryError(f"SPARQL syntax error: {_one_line(error)}") from None
        if isinstance(answer, ox.QueryBoolean):
            return QueryResult("ask", boolean=bool(answer))
        if isinstance(answer, ox.QueryTriples):
            triples = []
            for triple in answer:
                triples.append((self._back(triple.subject), self._back(triple.predicate), self._back(triple.object)))
                _too_many(max_rows, len(triples))
            return QueryResult("graph", triples=tuple(triples))
        variables = tuple(v.value for v in answer.variables)
        rows = []
        for solution in answer:
            rows.append(tuple(self._back(solution[v]) for v in variables))
            _too_many(max_rows, len(rows))
        return QueryResult("select", variables, tuple(rows))


class RdflibStore(Store):
    """The second backend: rdflib's in-memory ``Dataset`` and its pure-Python SPARQL engine."""

    backend = "rdflib"

    def __init__(self) -> None:
        import rdflib
        import rdflib.plugins.sparql

        super().__init__()
        rdflib.plugins.sparql.SPARQL_LOAD_GRAPHS = False  # FROM <url> must never fetch from the network
        self._dataset = rdflib.Dataset(default_union=True)

    def add_nquads(self, text: str) -> None:
        self._dataset.parse(data=text, format="nquads")

    def _load_turtle(self, path: Path, graph: str) -> None:
        self._dataset.graph(URIRef(graph)).parse(str(path), format="turtle")

    def dump(self) -> str:
        return self._dataset.serialize(format="nquads")

    def __len__(self) -> int:
        return sum(1 for _ in self._dataset.quads((None, None, None, None)))

    def _run(self, text: str, bindings: dict[str, Identifier], max_rows: int | None) -> QueryResult:
        from pyparsing import ParseException

        from rdflib.plugins.sparql import prepareQuery

        try:
            prepared = prepareQuery(_PROLOGUE + text)
        except ParseException as error:
            raise QueryError(f"SPARQL syntax error: {_one_line(error)}") from None
        except Exception as error:  # rdflib raises assorted errors for queries it cannot translate
            raise QueryError(f"SPARQL error: {_one_line(error)}") from None
        answer = self._dataset.query(prepared, initBindings=bindings)
        if answer.type == "ASK":
            return QueryResult("ask", boolean=bool(answer.askAnswer))
        if answer.type in ("CONSTRUCT", "DESCRIBE"):
            triples = tuple((s, p, normalise(o)) for s, p, o in answer.graph)
            _too_many(max_rows, len(triples))
            return QueryResult("graph", triples=triples)
        variables = tuple(str(v) for v in answer.vars)
        rows = []
        for row in answer:
            rows.append(tuple(normalise(row[i]) for i in range(len(variables))))
            _too_many(max_rows, len(rows))
        return QueryResult("select", variables, tuple(rows))


_LINE = re.compile(r"(error at |line:? ?)(\d+)")


def _one_line(error: BaseException) -> str:
    """The parser's message on one line, with line numbers counted in the user's text (not our prefixes)."""
    offset = _PROLOGUE.count("\n")
    text = _LINE.sub(lambda m: f"{m.group(1)}{max(1, int(m.group(2)) - offset)}", str(error))
    return " ".join(text.split())[:300]


BACKENDS: dict[str, type[Store]] = {"oxigraph": OxigraphStore, "rdflib": RdflibStore}


def open_store(*, backend: str = "oxigraph", ontology: bool = True, reports: Iterable[Any] = (),
               kb: KnowledgeBase | None = None) -> Store:
    """A store with the ontology (unless ``ontology=False``) and the given reports loaded."""
    if backend not in BACKENDS:
        raise QueryError(f"unknown store backend {backend!r} (known: {', '.join(BACKENDS)})")
    store = BACKENDS[backend]()
    if ontology:
        store.add_ontology(kb=kb)
    for report in reports:
        store.add_report(report)
    return store
