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
            lines.append(f"  {c['id']:<12} {c['status'].upper():<15}{_score_text(c)}  [{c['source']}]")
            if c.get("probability") is not None:
                low, high = c["probability_range"]
                lines.append(f"      probability {c['probability_label']} (range {_pct(low)}-{_pct(high)}, published table)")
            post = c.get("post_test")
            if post and (post["probability"] is not None or post["probability_range"] is not None):
                value = _pct(post["probability"]) if post["probability"] is not None else \
                    "-".join(_pct(x) for x in post["probability_range"])
                lines.append(f"      post-test probability {value} (pre-test {_pct(post['pretest'])}, "
                             f"sensitivity {post['sensitivity']}, specificity {post['specificity']})")
            for item in c["items"]:
                value = "" if item["value"] is None else f" = {item['value']}{' ' + item['unit'] if item.get('unit') and not item.get('finding') else ''}"
                rule = f"  ({item['rule']})" if item.get("rule") else ""
                points = f"  [{_range(item['points_range'])} points]" if item.get("points_range") else ""
                lines.append(f"      {item['status']:<8} {item['id']}{value}{rule}{points}")
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


def _range(values: list) -> str:
    low, high = ("-inf" if values[0] is None else values[0]), ("+inf" if values[1] is None else values[1])
    return str(low) if low == high else f"{low}..{high}"


def _pct(p: float | None) -> str:
    return "?" if p is None else f"{p * 100:.3g}%"


def _score_text(c: dict[str, Any]) -> str:
    if c["score_range"] is None:
        return ""
    score = "?" if c["score"] is None else c["score"]
    cutoff = "" if c["cutoff"] is None else f", cut-off {c['cutoff']}"
    return f" score {score} (range {_range(c['score_range'])}{cutoff})"

