"""The query suite (``queries/*.rq``): header parsing, safe parameter binding and the read-only guard.

Each query file opens with a comment saying its question, its parameters and
an example::

    # Question: Why is a lab abnormal for a patient: the causal paths, with sources.
    # Parameters:
    #   patient (string): the patient's id. Example: ex-sjia-mas
    #   lab (string, optional): a lab's short name. Example: ferritin
    # Example: mas-kg query why-abnormal --patient examples/patients/sjia-mas.json ...

Parameters are bound as RDF terms (``initBindings`` / ``substitutions``),
never pasted into the query text.

>>> suite = load_queries()
>>> q = suite["why-abnormal"]
>>> [p.name for p in q.parameters], q.bind({"patient": "ex-sjia-mas"})["patient"]
(['patient', 'lab'], rdflib.term.Literal('ex-sjia-mas'))
>>> check_query("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }")
Traceback (most recent call last):
...
kg.errors.QueryRefused: SERVICE is refused: this store is read-only and never leaves the machine
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping

from rdflib import Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Identifier

from .errors import QueryError, QueryRefused
from .knowledge import expand

__all__ = ["Parameter", "NamedQuery", "load_queries", "queries_dir", "check_query", "MAX_QUERY_LENGTH"]

#: The longest query text accepted (characters); longer ones are refused.
MAX_QUERY_LENGTH = 20_000

_TYPES = {"string", "iri", "integer", "decimal", "boolean"}
_PARAM = re.compile(r"^#\s+(?P<name>[A-Za-z_]\w*)\s+\((?P<type>\w+)(?P<optional>,\s*optional)?\):\s*(?P<text>.*)$")

# Text that cannot hide a keyword: strings, IRIs, comments (in the order SPARQL's lexer prefers them).
_OPAQUE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\''
                     r'|<[^<>"{}|^`\\\x00-\x20]*>|#[^\n]*')
_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_FORBIDDEN = re.compile(r"(?<![\w:?$\-])(SERVICE|LOAD|INSERT|DELETE|CLEAR|DROP|CREATE|COPY|MOVE|ADD|WITH)(?![\w:\-])",
                        re.IGNORECASE)


def check_query(text: str, *, max_length: int = MAX_QUERY_LENGTH) -> None:
    """Refuse what a read-only store must never run: updates, ``SERVICE``, ``LOAD``, over-long text.

    SPARQL resolves ``\\u`` escapes before parsing, so they are resolved here
    first; then strings, IRIs and comments are set aside and the keywords
    searched as tokens (``ex:load`` or ``?service`` are names, not keywords).
    """
    if len(text) > max_length:
        raise QueryRefused(f"the query is {len(text)} characters long; the limit is {max_length}")
    bare = _OPAQUE.sub(" ", _ESCAPE.sub(_codepoint, text))
    match = _FORBIDDEN.search(bare)
    if match:
        keyword = match.group(1).upper()
        if keyword == "SERVICE":
            raise QueryRefused("SERVICE is refused: this store is read-only and never leaves the machine")
        if keyword == "LOAD":
            raise QueryRefused("LOAD is refused: this store is read-only")
        raise QueryRefused(f"{keyword}: updates are refused: this store is read-only")


def _codepoint(match: re.Match[str]) -> str:
    code = int(match.group(1) or match.group(2), 16)
    return chr(code) if code < 0x110000 else ""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # string | iri | integer | decimal | boolean
    optional: bool
    text: str

    def term(self, raw: str) -> Identifier:
        """The RDF term for a value given on the command line or in a URL."""
        raw = raw.strip()
        if self.type == "string":
            return Literal(raw)
        if self.type == "iri":
            value = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
            if ":" not in value or any(c in value for c in '<>"{}|^`\\ '):
                raise QueryError(f"parameter {self.name}: {raw!r} is not an IRI or CURIE (e.g. mkg:IL6)")
            return URIRef(expand(value))
        if self.type == "boolean":
            if raw.lower() not in ("true", "false"):
                raise QueryError(f"parameter {self.name}: {raw!r} is not true or false")
            return Literal(raw.lower() == "true")
        try:
            number = Decimal(raw)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or (self.type == "integer" and number != int(number)):
            raise QueryError(f"parameter {self.name}: {raw!r} is not an {self.type}")
        return Literal(str(int(number)), datatype=XSD.integer) if self.type == "integer" else \
            Literal(str(number), datatype=XSD.decimal)


@dataclass(frozen=True)
class NamedQuery:
    """One ``.rq`` file: its question, parameters, example and text."""

    name: str
    path: Path
    question: str
    parameters: tuple[Parameter, ...]
    example: str
    text: str

    def bind(self, values: Mapping[str, str]) -> dict[str, Identifier]:
        """Check and convert parameter values: unknown or missing (required) ones are errors."""
        known = {p.name: p for p in self.parameters}
        for name in values:
            if name not in known:
                raise QueryError(f"query {self.name} has no parameter {name!r} "
                                 f"(it has: {', '.join(known) or 'none'})")
        for parameter in self.parameters:
            if not parameter.optional and parameter.name not in values:
                raise QueryError(f"query {self.name} needs --param {parameter.name}=... ({parameter.text})")
        return {name: known[name].term(value) for name, value in values.items()}


def queries_dir() -> Path:
    """The query suite: the source tree's ``queries/`` or the installed copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "queries", here / "queries"):
        if candidate.is_dir() and any(candidate.glob("*.rq")):
            return candidate
    raise QueryError("the queries/ directory was not found")


def read_query(path: Path) -> NamedQuery:
    """Read a query file and its header (question, parameters, example)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise QueryError(f"cannot read the query: {error.strerror or error.__class__.__name__}",
                         where=str(path)) from None
    except UnicodeDecodeError as error:  # say what is wrong, not the exception's class name
        raise QueryError(f"cannot read the query: not UTF-8 text (byte {error.start})", where=str(path)) from None
    question, example, parameters, section = [], "", [], None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        if body.startswith("Question:"):
            section, body = "question", body[len("Question:"):].strip()
        elif body.startswith("Parameters:"):
            section = "parameters"
            continue
        elif body.startswith("Example:"):
            section, example = "example", body[len("Example:"):].strip()
            continue
        if section == "question" and body:
            question.append(body)
        elif section == "parameters" and (match := _PARAM.match(line)):
            if match["type"] not in _TYPES:
                raise QueryError(f"parameter {match['name']}: unknown type {match['type']!r}", where=str(path))
            parameters.append(Parameter(match["name"], match["type"], bool(match["optional"]), match["text"]))
        elif section == "parameters" and parameters and body and body != "(none)":  # a continuation line
            last = parameters[-1]
            parameters[-1] = Parameter(last.name, last.type, last.optional, f"{last.text} {body}")
        elif section == "example" and body:
            example += " " + body
    return NamedQuery(path.stem, path, " ".join(question), tuple(parameters), example.strip(), text)


def load_queries(directory: Path | None = None) -> dict[str, NamedQuery]:
    """Every query of the suite by name (the file name without ``.rq``)."""
    return {path.stem: read_query(path) for path in sorted((directory or queries_dir()).glob("*.rq"))}
