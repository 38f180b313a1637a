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
        d = self.data
        lines = [f"mas-kg report for patient {d['patient']} at {d['at'] or '(no time given)'}"]
        obs = d["observations"]
        lines.append(f"observations: {obs['used']} used, {len(obs['rejected'])} rejected")
        for r in obs["rejected"]:
            lines.append(f"  rejected #{r['index']} {r['code'] or ''}: {r['reason']}")
        lines.append("")
        lines.append("criteria:")
        for c in d["criteria"]:
            score = f" score {c['score']} (range {c['score_range'][0]}-{c['score_range'][1]}, cut-off {c['cutoff']})" if c["score_range"] else ""
            lines.append(f"  {c['id']:<10} {c['status'].upper():<15}{score}  [{c['source']}]")
            for item in c["items"]:
                value = "" if item["value"] is None else f" = {item['value']}{' ' + item['unit'] if item.get('unit') and not item.get('finding') else ''}"
                rule = f"  ({item['rule']})" if item.get("rule") else ""
                lines.append(f"      {item['status']:<8} {item['id']}{value}{rule}")
            if c["would_decide"]:
                lines.append(f"      would decide: {', '.join(c['would_decide'])}")
        lines.append("")
        lines.append("abnormal findings and why:")
        for e in d["explanations"]:
            lines.append(f"  {e['finding']} {e['direction']}:")
            for path in e["paths"][:3]:
                lines.append(f"    {path['text']}")
        if d["unexplained"]:
            lines.append(f"  no causal path in the ontology for: {', '.join(d['unexplained'])}")
        if d["candidates"]:
            lines.append("")
            lines.append("candidates:")
            for cand in d["candidates"]:
                lines.append(f"  {cand['rank']}. {cand['label']} ({cand['category']}) score {cand['score']}")
                for s in cand["supporting"][:4]:
                    lines.append(f"       + {s}")
                for s in cand["against"][:3]:
                    lines.append(f"       - {s}")
        return "\n".join(lines) + "\n"
