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
        self.where = where
        self.problem = message
        super().__init__(f"{where}: {message}" if where else message)


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
