"""Query results in the SPARQL 1.1 result formats (JSON, CSV, TSV, XML), RDF for graphs, and a text table.

One writer for both backends, so that the same answer prints the same bytes.

>>> from rdflib import Literal, URIRef
>>> from kg.store import QueryResult
>>> result = QueryResult("select", ("id", "n"), ((URIRef("https://w3id.org/mas-kg/MAS"), Literal(3)),))
>>> to_csv(result).splitlines()
['id,n', 'https://w3id.org/mas-kg/MAS,3']
>>> print(to_table(result))
id       n
-------  -
mkg:MAS  3
(1 row)
"""

from __future__ import annotations

import csv
import io
import json
from typing import Callable, Mapping
from xml.sax.saxutils import escape, quoteattr

from rdflib import BNode, URIRef
from rdflib.term import Identifier

from .rdf import PREFIXES
from .rdf import escape as ntriples_escape
from .store import QueryResult

__all__ = ["FORMATS", "GRAPH_FORMATS", "choose", "to_json", "to_csv", "to_tsv", "to_xml", "to_table",
           "to_ntriples", "to_turtle", "render", "negotiate"]

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _json_term(term: Identifier) -> dict[str, str]:
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    out = {"type": "literal", "value": str(term)}
    if term.language:
        out["xml:lang"] = term.language
    elif term.datatype and str(term.datatype) != _XSD_STRING:
        out["datatype"] = str(term.datatype)
    return out


def to_json(result: QueryResult) -> str:
    """SPARQL 1.1 Query Results JSON (``application/sparql-results+json``)."""
    if result.kind == "ask":
        return json.dumps({"head": {}, "boolean": result.boolean})
    if result.kind != "select":
        raise ValueError("a graph result is RDF, not a result set")
    bindings = [{v: _json_term(t) for v, t in zip(result.variables, row) if t is not None} for row in result.rows]
    return json.dumps({"head": {"vars": list(result.variables)}, "results": {"bindings": bindings}},
                      ensure_ascii=False)


def _plain(term: Identifier | None) -> str:
    return "" if term is None else f"_:{term}" if isinstance(term, BNode) else str(term)


def to_csv(result: QueryResult) -> str:
    """SPARQL 1.1 Query Results CSV: plain values, CRLF line ends (``text/csv``)."""
    if result.kind == "ask":
        return f"boolean\r\n{str(result.boolean).lower()}\r\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(result.variables)
    for row in result.rows:
        writer.writerow([_plain(t) for t in row])
    return buffer.getvalue()


def _ntriples_term(term: Identifier | None) -> str:
    if term is None:
        return ""
    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, BNode):
        return f"_:{term}"
    text = ntriples_escape(str(term))
    if term.language:
        return f'"{text}"@{term.language}'
    if term.datatype and str(term.datatype) != _XSD_STRING:
        return f'"{text}"^^<{term.datatype}>'
    return f'"{text}"'


def to_tsv(result: QueryResult) -> str:
    """SPARQL 1.1 Query Results TSV: terms in Turtle/N-Triples syntax (``text/tab-separated-values``)."""
    if result.kind == "ask":
        return f"?boolean\n{str(result.boolean).lower()}\n"
    lines = ["\t".join(f"?{v}" for v in result.variables)]
    lines += ["\t".join(_ntriples_term(t) for t in row) for row in result.rows]
    return "\n".join(lines) + "\n"


def to_xml(result: QueryResult) -> str:
    """SPARQL Query Results XML (``application/sparql-results+xml``)."""
    head = '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n'
    if result.kind == "ask":
        return head + f"<head/>\n<boolean>{str(result.boolean).lower()}</boolean>\n</sparql>\n"
    parts = [head, "<head>", *(f"<variable name={quoteattr(v)}/>" for v in result.variables), "</head>\n<results>\n"]
    for row in result.rows:
        parts.append("<result>")
        for variable, term in zip(result.variables, row):
            if term is None:
                continue
            if isinstance(term, URIRef):
                value = f"<uri>{escape(str(term))}</uri>"
            elif isinstance(term, BNode):
                value = f"<bnode>{escape(str(term))}</bnode>"
            elif term.language:
                value = f"<literal xml:lang={quoteattr(term.language)}>{escape(str(term))}</literal>"
            elif term.datatype and str(term.datatype) != _XSD_STRING:
                value = f"<literal datatype={quoteattr(str(term.datatype))}>{escape(str(term))}</literal>"
            else:
                value = f"<literal>{escape(str(term))}</literal>"
            parts.append(f"<binding name={quoteattr(variable)}>{value}</binding>")
        parts.append("</result>\n")
    parts.append("</results>\n</sparql>\n")
    return "".join(parts)


def _short(term: Identifier | None) -> str:
    if term is None:
        return ""
    if isinstance(term, URIRef):
        text = str(term)
        best = max(((p, ns) for p, ns in PREFIXES.items() if text.startswith(ns)), key=lambda x: len(x[1]),
                   default=None)
        if best:
            local = text[len(best[1]):]
            if best[0] == "obo" and "_" in local:  # obo:HP_0003281 reads better as HP:0003281
                return local.replace("_", ":", 1)
            return f"{best[0]}:{local}"
        return text
    return " ".join(_plain(term).split())


def to_table(result: QueryResult) -> str:
    """A text table for people: IRIs shortened to CURIEs, one line per row."""
    if result.kind == "ask":
        return "yes" if result.boolean else "no"
    if result.kind == "graph":
        return to_turtle(result).rstrip("\n")
    cells = [[_short(t) for t in row] for row in result.rows]
    widths = [max([len(v)] + [len(r[i]) for r in cells]) for i, v in enumerate(result.variables)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(result.variables), line(["-" * w for w in widths])] + [line(r) for r in cells]
    out.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(out)


def to_ntriples(result: QueryResult) -> str:
    """A graph result (CONSTRUCT, DESCRIBE) as N-Triples."""
    return "".join(f"{_ntriples_term(s)} {_ntriples_term(p)} {_ntriples_term(o)} .\n" for s, p, o in result.triples)


def to_turtle(result: QueryResult) -> str:
    """A graph result as Turtle with the product's prefixes."""
    import rdflib

    graph = rdflib.Graph()
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace)
    for triple in result.triples:
        graph.add(triple)
    return graph.serialize(format="turtle")


#: Result-set formats by name, with their media types.
FORMATS: dict[str, tuple[str, Callable[[QueryResult], str]]] = {
    "json": ("application/sparql-results+json", to_json),
    "csv": ("text/csv", to_csv),
    "tsv": ("text/tab-separated-values", to_tsv),
    "xml": ("application/sparql-results+xml", to_xml),
    "table": ("text/plain", to_table),
}
#: Graph-result formats by name, with their media types.
GRAPH_FORMATS: dict[str, tuple[str, Callable[[QueryResult], str]]] = {
    "turtle": ("text/turtle", to_turtle),
    "ntriples": ("application/n-triples", to_ntriples),
}
_ALIASES = {"application/json": "json", "application/xml": "xml", "text/xml": "xml"}


def render(result: QueryResult, format: str) -> tuple[str, str]:
    """``(media type, text)`` of a result in a named format; graph results fall back to Turtle."""
    if result.kind == "graph":
        media, writer = GRAPH_FORMATS.get(format, GRAPH_FORMATS["turtle"])
        return media + "; charset=utf-8", writer(result)
    if format not in FORMATS:
        raise ValueError(f"unknown result format {format!r}")
    media, writer = FORMATS[format]
    return media + "; charset=utf-8", writer(result)


def choose(accept: str | None, offers: Mapping[str, str]) -> str | None:
    """The offer (media type -> name) an ``Accept`` header prefers; q-values honoured, the first offer the default.

    >>> offers = {"application/json": "json", "text/turtle": "turtle"}
    >>> choose("text/*;q=0.9, application/xml", offers), choose(None, offers), choose("image/png", offers)
    ('turtle', 'json', None)
    """
    default = next(iter(offers.values()))
    if not accept:
        return default
    choices = []
    for position, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        choices.append((-quality, position, media.lower()))
    for quality, _, media in sorted(choices):
        if quality >= 0:
            continue
        if media == "*/*":
            return default
        if media in offers:
            return offers[media]
        if media.endswith("/*"):
            match = next((name for offer, name in offers.items() if offer.startswith(media[:-1])), None)
            if match:
                return match
    return None


def negotiate(accept: str | None, *, graph: bool = False) -> str | None:
    """The result format an ``Accept`` header asks for: JSON (results) or Turtle (graphs) by default.

    >>> negotiate("text/csv;q=0.5, application/sparql-results+xml"), negotiate(None), negotiate("image/png")
    ('xml', 'json', None)
    """
    allowed = GRAPH_FORMATS if graph else FORMATS
    offers = {media: name for name, (media, _) in allowed.items()}
    offers.update({media: name for media, name in _ALIASES.items() if name in allowed})
    return choose(accept, offers)
