"""Errors the engine raises for bad input; the CLI turns them into exit status 2."""

from __future__ import annotations

__all__ = ["InputError", "OntologyError"]


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
