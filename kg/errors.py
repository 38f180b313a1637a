"""Errors the engine raises for bad input; the CLI turns them into exit status 2."""

from __future__ import annotations

__all__ = ["InputError", "OntologyError", "QueryError", "QueryRefused", "QueryTimeout", "ResultTooLarge",
           "QueryUnavailable"]


class InputError(ValueError):
    """A patient file (or a patient-level field) that cannot be used at all.

    The message is one line naming the problem and where it is.

    >>> str(InputError("age_years must be a number", where="p.json"))
    'p.json: age_years must be a number'
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        # one line whatever the input holds: a line break inside a quoted id or value is shown escaped
        message = _one_line(message)
        where = _one_line(where) if where is not None else None
        self.where = where
        self.problem = message
        super().__init__(f"{where}: {message}" if where else message)


_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # where str.splitlines breaks a line


def _one_line(text: str) -> str:
    """``text`` with its line breaks escaped.

    >>> _one_line("Patient/x\\ny")
    'Patient/x\\\\ny'
    """
    if not any(ch in _BREAKS for ch in text):
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if ch in _BREAKS else ch for ch in text)


class OntologyError(RuntimeError):
    """The ontology files cannot be read into the engine's indexed form."""


class QueryError(InputError):
    """A SPARQL query that cannot be run: a syntax error, an unknown or missing parameter."""


class QueryRefused(QueryError):
    """A query asking for what a read-only store never does: an update, ``SERVICE`` or ``LOAD``, or too long."""


class QueryTimeout(QueryError):
    """A query that ran past its time limit."""


class ResultTooLarge(QueryError):
    """A query whose result has more rows than the limit allows."""


class QueryUnavailable(QueryError):
    """The query service could not answer: a worker stopped or is shutting down (not the query's fault)."""
