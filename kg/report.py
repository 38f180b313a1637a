"""The report (contract v1, DESIGN.md section 4) and its JSON and text forms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Report", "SCHEMA"]

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

    def to_text(self) -> str:
        """A short consult note (see :mod:`kg.consult`)."""
        from .consult import consult_note

        return consult_note(self.data)
