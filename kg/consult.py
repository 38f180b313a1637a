"""The text report: a short consult note rendered from the report's JSON object.

Order follows how a consultant writes: the patient and context, the
assessment (ranked candidates with their reasons, primary vs secondary HLH),
alerts, criteria, why each abnormal lab is abnormal, the course of serial
labs, therapies for the leading candidates (information, not dosing advice),
and what to test next.  Nothing here decides anything: it only lays out the
report.
"""

from __future__ import annotations

from typing import Any

__all__ = ["consult_note"]

PATHS_SHOWN = 3
REASONS_SHOWN = 5


def consult_note(d: dict[str, Any]) -> str:
    lines: list[str] = []
    _header(d, lines)
    _assessment(d, lines)
    _alerts(d, lines)
    _criteria(d, lines)
    _explanations(d, lines)
    _trends(d, lines)
    _therapies(d, lines)
    _next(d, lines)
    return "\n".join(lines).rstrip() + "\n"


def _header(d: dict[str, Any], lines: list[str]) -> None:
    age = "" if d.get("age_years") is None else f", {d['age_years']:g} years"
    lines.append(f"mas-kg consult note: patient {d['patient']}{age}, at {d['at'] or '(no time given)'}")
    context = "; ".join(f"{c['code']} ({c['status']})" for c in d.get("conditions", [])) or "none given"
    meds = ", ".join(m["code"] + (f" from {m['start']}" if m.get("start") else "") for m in d.get("medications", []))
    lines.append(f"context: {context}; medications: {meds or 'none given'}")
    obs = d["observations"]
    window = f", {len(obs['out_of_window'])} older than the {obs['window_hours']:g} h window (kept for trends)" \
        if obs.get("out_of_window") else ""
    lines.append(f"observations: {obs['used']} used, {len(obs['rejected'])} rejected{window}")
    for r in obs["rejected"]:
        lines.append(f"  rejected #{r['index']} {r['code'] or ''}: {r['reason']}")
    for note in d.get("notes", []):
        lines.append(f"  note: {note}")


def _assessment(d: dict[str, Any], lines: list[str]) -> None:
    lines += ["", "ASSESSMENT (evidence points from the ontology's rules; not probabilities)"]
    candidates = d["candidates"]
    for cand in candidates[:3]:
        lines.append(f"  {cand['rank']}. {cand['label']} [{cand['category']}]: {cand['score']:g} points")
        for reason in cand["supporting"][:REASONS_SHOWN]:
            lines.append(f"       for:     {reason}")
        for reason in cand["against"][:REASONS_SHOWN]:
            lines.append(f"       against: {reason}")
    rest = ", ".join(f"{c['category']} {c['score']:g}" for c in candidates[3:])
    if rest:
        lines.append(f"  less likely: {rest}")
    origin = d.get("hlh_origin")
    if origin:
        mh = origin.get("mh_score")
        mh_text = "" if not mh else f"; MH score {mh['status']} ({_score(mh['score'])}, cut-off {mh['cutoff']})"
        genes = ", ".join(g["gene"] or "no pathogenic variant" for g in origin["genes"]) or "genetic testing not reported"
        family = {None: "not reported", True: "positive", False: "negative"}[origin["family_history"]]
        age = "unknown" if origin["age_at_onset_years"] is None else f"{origin['age_at_onset_years']:g} years"
        verdict = "does not arise (no HLH-family candidate is supported)" if origin["favoured"] == "not_hlh" \
            else f"{origin['favoured']} favoured"
        lines.append(f"  primary vs secondary HLH: {verdict} (primary_hlh {origin['primary_score']:g} "
                     f"vs {origin['secondary']} {origin['secondary_score']:g}); genes: {genes}; family history: "
                     f"{family}; age at onset {age}{mh_text}")


def _alerts(d: dict[str, Any], lines: list[str]) -> None:
    if not d["alerts"]:
        return
    lines += ["", "ALERTS"]
    for alert in d["alerts"]:
        mark = "!" if alert["severity"] == "warning" else "i"
        lines.append(f"  {mark} [{alert['code']}] {alert['message']}")
        for chain in alert.get("explanation", [])[:2]:
            lines.append(f"      why: {chain['text']}")


def _criteria(d: dict[str, Any], lines: list[str]) -> None:
    lines += ["", "CRITERIA AND SCORES"]
    for c in d["criteria"]:
        extra = []
        if c.get("probability_label"):
            extra.append(f"probability {c['probability_label']} (published table)")
        post = c.get("post_test") or {}
        if post.get("probability") is not None:
            extra.append(f"post-test {_pct(post['probability'])} from pre-test {_pct(post['pretest'])}")
        elif post.get("probability_range") is not None:
            extra.append(f"post-test {'-'.join(_pct(x) for x in post['probability_range'])} from pre-test "
                         f"{_pct(post['pretest'])}")
        lines.append(f"  {c['id']:<12} {c['status'].upper():<15}{_score_text(c)}"
                     + (f"; {'; '.join(extra)}" if extra else "") + f"  [{c['source']}]")
        for item in c["items"]:
            if item["status"] == "missing" and not item["id"].count(".") > 1:
                points = f" [{_range(item['points_range'])} points]" if item.get("points_range") else ""
                lines.append(f"      missing  {item['id']}{points}")
        if c["would_decide"]:
            lines.append(f"      would decide: {', '.join(c['would_decide'])}")


def _explanations(d: dict[str, Any], lines: list[str]) -> None:
    lines += ["", "WHY EACH ABNORMAL FINDING IS ABNORMAL (best causal chains; a source on every step in the JSON)"]
    values = {f["code"]: f for f in d["findings"]}
    for e in d["explanations"]:
        f = values.get(e["finding"], {})
        given = f.get("given") or {}
        shown = f" ({f.get('comparator') or ''}{given['value']:g} {given['unit']})" if given.get("value") is not None else ""
        lines.append(f"  {e['finding']} {e['direction']}{shown}:")
        for path in e["paths"][:PATHS_SHOWN]:
            lines.append(f"    {path['text']}")
    if d["unexplained"]:
        lines.append(f"  no causal path in the ontology for: {', '.join(d['unexplained'])}")


def _trends(d: dict[str, Any], lines: list[str]) -> None:
    if not d.get("trends"):
        return
    lines += ["", "COURSE OF SERIAL LABS"]
    for t in d["trends"]:
        points = " -> ".join(f"{p['value']:g} ({p['time'][:16]})" for p in t["points"])
        change = t["change"]
        rel = "" if change["relative"] is None else f", {change['relative'] * 100:+.0f}%"
        lines.append(f"  {t['code']} [{t['unit']}]: {points}; {t['direction']}{rel} over {change['hours']:g} h")


def _therapies(d: dict[str, Any], lines: list[str]) -> None:
    if not d.get("therapies"):
        return
    lines += ["", "THERAPIES FOR THE LEADING CANDIDATES (information from the ontology, not dosing advice)"]
    for t in d["therapies"]:
        targets = ", ".join(i["label"] for i in t["interrupts"]) or "(no mechanism in the ontology)"
        on = " (patient is on it)" if t["on_therapy"] else ""
        used_for = ", ".join(f["candidate"] for f in t["for"])
        lines.append(f"  {t['label']}{on} [{used_for}]: interrupts {targets}")
        markers = ", ".join(f"{m['code']} {'down' if m['expected'] == 'falls' else 'up'}" for m in t["response_markers"][:6])
        if markers:
            lines.append(f"      a response would show as: {markers}")


def _next(d: dict[str, Any], lines: list[str]) -> None:
    if not d.get("next_tests"):
        return
    lines += ["", "WHAT TO TEST NEXT"]
    for test in d["next_tests"][:8]:
        lines.append(f"  - {test['test']}: {'; '.join(test['why'])}")
    if len(d["next_tests"]) > 8:
        lines.append(f"  (and {len(d['next_tests']) - 8} more in the JSON report)")


def _range(values: list) -> str:
    low, high = ("-inf" if values[0] is None else values[0]), ("+inf" if values[1] is None else values[1])
    return str(low) if low == high else f"{low}..{high}"


def _pct(p: float | None) -> str:
    return "?" if p is None else f"{p * 100:.3g}%"


def _score(value: Any) -> str:
    return "?" if value is None else f"{value:g}"


def _score_text(c: dict[str, Any]) -> str:
    if c["score_range"] is None:
        return ""
    cutoff = "" if c["cutoff"] is None else f", cut-off {c['cutoff']}"
    return f" score {_score(c['score'])} (range {_range(c['score_range'])}{cutoff})"
