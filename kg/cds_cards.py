r"""CDS Hooks cards from a report: when a card is warranted, its summary, indicator and Markdown detail.

The rules (the card's urgency is a service policy held in the ontology as each
criteria set's ``mkg:alertTier``, shown in the report as ``alert_tier``; the
criteria, their verdicts and every explanation come from the report):

* ``critical``: a set of tier ``critical`` (the diagnostic or classification
  criteria of MAS/HLH: ``mas2016``, ``hlh2004``, ``ravelli2005``,
  ``parodi2009``, ``hscore``) is **met**;
* ``warning``: otherwise, a set of tier ``warning`` (screening rules and
  scores, other syndromes' criteria: ``ms_score``, ``kostik2015``,
  ``ferritin_esr``, ``mas_seed``, ``ohi``, ``isth_dic``) is met, or a
  critical-tier set is ``indeterminate`` with at least one item already met
  (the tests listed under "would decide" could complete it), or an alert of
  severity ``warning`` or ``critical`` fired;
* ``info``: otherwise, if a finding is abnormal or an observation was
  rejected (so nothing the client sent is silently dropped);
* no card at all otherwise (a patient with nothing abnormal): the spec's
  ``{"cards": []}``.  ``mh_score`` (primary HLH *versus* MAS, tier ``none``)
  never raises the indicator: it only means something once HLH is established.

Names in the summary are the ontology's short labels (``short_label`` of
criteria and candidates); "likely" is said of a leading candidate that is a
form of HLH (``hlh_family``).

One card per request, without suggestions (nothing is ordered for the
clinician); critical and warning cards offer ``overrideReasons``.  Its ``summary`` (always under 140 characters) names
the leading candidate and what decided the indicator; its ``detail`` (GitHub
Flavored Markdown) holds the criteria table, would-decide tests, the top
candidates with their evidence, the alerts with their causal explanation,
the first causal chain of each abnormal finding with a source on every
step, the next tests, the rejected observations with their FHIR locations,
and the reader's notes.  Every piece of text, whether from the request or
from the ontology, goes through :func:`md`: HTML-significant characters
become entities, all other ASCII punctuation is backslash-escaped (no
emphasis, link, image, table break or autolink can form), ``@`` is followed
by a word joiner (no e-mail autolink), line breaks collapse and control and
format characters are dropped.

>>> print(md('[x](javascript:alert(1)) </script><img src=x onerror=alert(1)>'))
\[x\]\(javascript\:alert\(1\)\) &lt;\/script&gt;&lt;img src\=x onerror\=alert\(1\)&gt;
>>> card = main_card({"patient": "p1", "at": None, "criteria": [], "candidates": [], "findings": [],
...     "explanations": [], "alerts": [], "next_tests": [], "notes": [],
...     "observations": {"given": 1, "used": 0, "rejected": [{"index": 0, "code": "x", "reason": "unknown code"}]}},
...     sources=["prefetch.observations.entry[0] Observation/o1"], view_url=None)
>>> card["indicator"], card["summary"]
('info', 'mas-kg could not use 1 of 1 observations')
"""

from __future__ import annotations

import string
import unicodedata
import uuid
from typing import Any, Sequence

__all__ = ["main_card", "detail", "indicator_of", "md", "SUMMARY_LIMIT",
           "OVERRIDE_REASONS"]

SUMMARY_LIMIT = 139  # the spec: "<140-character summary"
CANDIDATES_SHOWN, REASONS_SHOWN, TESTS_SHOWN = 3, 3, 8
#: offered on critical and warning cards; a client may show them when the card is dismissed (feedback)
OVERRIDE_REASONS = tuple({"system": "https://w3id.org/mas-kg/cds/override-reason", "code": code, "display": display}
                         for code, display in (("already-assessed", "MAS/HLH already assessed or being treated"),
                                               ("data-wrong", "The patient's data here are incomplete or wrong"),
                                               ("judgement", "Clinical judgement differs")))
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_ESCAPED = frozenset(string.punctuation) - set(_ENTITIES)


def md(value: Any) -> str:
    """Text as inert GitHub Flavored Markdown and HTML (see the module docstring)."""
    out = []
    for ch in " ".join(str(value).split()):
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _ESCAPED:
            out.append("\\" + ch + ("\u2060" if ch == "@" else ""))
        elif unicodedata.category(ch)[0] != "C":
            out.append(ch)
    return "".join(out)


def _plain(text: str, limit: int) -> str:
    """One line of plain text (the summary is not Markdown), cut to ``limit`` characters."""
    text = "".join(ch for ch in " ".join(text.split()) if unicodedata.category(ch)[0] != "C")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _abnormal(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f.get("interpretation") in ("high", "low", "abnormal")
            or (f.get("kind") == "finding" and f.get("present") is True)]


def _by_status(report: dict[str, Any], tier: str, status: str) -> list[dict[str, Any]]:
    """The criteria sets of an alert tier (the ontology's mkg:alertTier: critical or warning) with a status."""
    return [c for c in report["criteria"] if c.get("alert_tier") == tier and c["status"] == status]


def _short(criterion: dict[str, Any]) -> str:
    return criterion.get("short_label") or criterion["id"]


def _partly_met(criterion: dict[str, Any]) -> bool:
    return any(item["status"] == "met" for item in criterion.get("items", []))


def indicator_of(report: dict[str, Any]) -> str | None:
    """``critical``, ``warning``, ``info`` or ``None`` (no card) by the rules of the module docstring."""
    if _by_status(report, "critical", "met"):
        return "critical"
    if _by_status(report, "warning", "met") or any(_partly_met(c) for c in _by_status(
            report, "critical", "indeterminate")) or any(a.get("severity") in ("warning", "critical")
                                                         for a in report["alerts"]):
        return "warning"
    if _abnormal(report) or report["observations"]["rejected"]:
        return "info"
    return None


def _number(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.0f}" if abs(value) >= 1000 and float(value).is_integer() else f"{value:g}"
    return "?" if value is None else str(value)


def _value(finding: dict[str, Any]) -> str:
    if finding.get("value") is None:
        return "present" if finding.get("present") else "absent" if finding.get("present") is False else ""
    return f"{finding.get('comparator') or ''}{_number(finding['value'])} {finding.get('unit') or ''}".strip()


def _fit(head: str, parts: Sequence[str], joiner: str = "; ") -> str:
    """``head`` and as many of ``parts`` as fit in the summary limit."""
    text = head
    for index, part in enumerate(parts):
        candidate = text + (": " if index == 0 else joiner) + part
        if len(candidate) > SUMMARY_LIMIT:
            break
        text = candidate
    return _plain(text, SUMMARY_LIMIT)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(report: dict[str, Any], indicator: str) -> str:
    """The one-line summary; the leading candidate is named only when its evidence points are positive."""
    candidates = report["candidates"]
    lead = candidates[0] if candidates and candidates[0]["score"] > 0 else None
    name = (lead.get("short_label") or lead["category"]) if lead else None
    ferritin = next((f for f in report["findings"] if f["code"] == "ferritin" and f.get("interpretation") == "high"),
                    None)
    alerts = [a["label"].split(":")[0] for a in report["alerts"] if a.get("severity") in ("warning", "critical")]
    if indicator == "critical":
        met = [_short(c) for c in _by_status(report, "critical", "met")]
        head = f"{name} likely" if lead and lead.get("hlh_family") else \
            f"{name} leads, yet MAS/HLH criteria met" if name else "MAS/HLH criteria met"
        parts = [", ".join(met) + " met"] + ([f"ferritin {_value(ferritin)}"] if ferritin else []) + alerts
        if len(head + ": " + parts[0]) > SUMMARY_LIMIT:  # too many sets to name: count them
            parts[0] = f"{len(met)} MAS/HLH criteria sets met"
        return _fit(head, parts)
    if indicator == "warning":
        parts = [f"{_short(c)} met" for c in _by_status(report, "warning", "met")]
        parts += [f"{_short(c)} indeterminate" for c in
                  _by_status(report, "critical", "indeterminate") if _partly_met(c)]
        return _fit(f"{name} leads; MAS/HLH not excluded" if name else "MAS/HLH not excluded", parts + alerts)
    obs = report["observations"]
    if not obs["used"]:
        return _plain(f"mas-kg could not use {len(obs['rejected'])} of {obs['given']} observations", SUMMARY_LIMIT)
    parts = [f"{_plural(len(_abnormal(report)), 'abnormal finding')} explained"]
    if obs["rejected"]:
        parts.append(f"{_plural(len(obs['rejected']), 'observation')} not used")
    return _fit(f"{name} leads; no MAS/HLH criteria met" if name else "No MAS/HLH criteria met", parts)


def main_card(report: dict[str, Any], *, sources: Sequence[str], view_url: str | None,
              version: str = "", hook_instance: str | None = None) -> dict[str, Any] | None:
    """The card for a report (``None`` when no card is warranted).

    ``sources[i]`` says where observation ``i`` came from (a FHIR location);
    ``view_url`` is the absolute URL of the report's causal-graph page.
    """
    indicator = indicator_of(report)
    if indicator is None:
        return None
    cited = (_by_status(report, "critical", "met") + _by_status(report, "warning", "met"))[:2]
    names = [_short(c) + (f" ({c['source']})" if str(c.get("source", "")).startswith(
        ("doi:", "PMID:")) else "") for c in cited]
    source: dict[str, Any] = {"label": _plain(f"mas-kg {version}".strip() + (": " + "; ".join(names) if names
                                                                           else ""), 200)}
    doi = next((c["source"][4:] for c in cited if str(c.get("source", "")).startswith("doi:")), None)
    if doi:
        source["url"] = "https://doi.org/" + doi
    card: dict[str, Any] = {"uuid": str(uuid.uuid4()), "summary": _summary(report, indicator), "indicator": indicator,
                            "detail": detail(report, sources=sources, version=version, hook_instance=hook_instance),
                            "source": source}
    if indicator != "info":
        card["overrideReasons"] = [dict(reason) for reason in OVERRIDE_REASONS]
    if view_url:
        card["links"] = [{"label": "Causal graph of this patient", "url": view_url, "type": "absolute"}]
    return card


def detail(report: dict[str, Any], *, sources: Sequence[str], version: str = "",
           hook_instance: str | None = None) -> str:
    """The card's Markdown detail (sections as listed in the module docstring)."""
    lines: list[str] = []
    obs = report["observations"]
    lines.append(f"**mas-kg assessment of patient {md(report['patient'])}"
                 f"{' at ' + md(report['at']) if report.get('at') else ''}**: {obs['used']} of {obs['given']} "
                 "observations used. Decision support from the ontology's criteria and sourced causal graph; "
                 "not a diagnosis.")
    _criteria(report, lines)
    _candidates(report, lines)
    _alerts(report, lines)
    _explanations(report, lines)
    _next_tests(report, lines)
    _rejected(report, lines, sources)
    if report.get("notes"):
        lines += ["", "#### Notes", ""] + [f"- {md(note)}" for note in report["notes"]]
    digest = str(report.get("ontology", {}).get("digest", ""))[:12]
    lines += ["", "---", f"mas-kg {md(version)}; ontology digest {md(digest)}"
              + (f"; hookInstance {md(hook_instance)}" if hook_instance else "")]
    return "\n".join(lines) + "\n"


def _criteria(report: dict[str, Any], lines: list[str]) -> None:
    lines += ["", "#### Criteria and scores", "", "| Set | Status | Score (possible range) | Cut-off | Source |",
              "| --- | --- | --- | --- | --- |"]
    skipped = []
    for c in report["criteria"]:
        if c["status"] == "not_applicable":
            skipped.append(c["label"])
            continue
        status = f"**{md(c['status'])}**" if c["status"] in ("met", "indeterminate") else md(c["status"])
        score = "" if c.get("score") is None else md(_number(c["score"]))
        if c.get("score_range") is not None:
            low, high = (md("-∞" if v is None and i == 0 else "+∞" if v is None else _number(v))
                         for i, v in enumerate(c["score_range"]))
            score += f" ({low} to {high})" if low != high else ""
        if c.get("probability_label"):
            score += f"; {md(c['probability_label'])}"
        lines.append(f"| {md(c['label'])} | {status} | {score} | {md(_number(c.get('cutoff')))} | {md(c['source'])} |")
    if skipped:
        lines += ["", "Not applicable to this patient (entry condition not met): " + md("; ".join(skipped)) + "."]
    pending = [c for c in report["criteria"] if c["status"] == "indeterminate" and c.get("would_decide")]
    if pending:
        lines += ["", "Tests that would decide the indeterminate sets:", ""]
        lines += [f"- {md(c['label'])}: {md(', '.join(c['would_decide']))}" for c in pending]


def _candidates(report: dict[str, Any], lines: list[str]) -> None:
    if not report["candidates"]:
        return
    lines += ["", "#### Candidates (evidence points from the ontology's rules, not probabilities)", ""]
    for cand in report["candidates"][:CANDIDATES_SHOWN]:
        lines.append(f"{cand['rank']}. **{md(cand['label'])}**: {md(_number(cand['score']))} points")
        for reason in cand["supporting"][:REASONS_SHOWN]:
            lines.append(f"   - for: {md(reason)}")
        for reason in cand["against"][:REASONS_SHOWN]:
            lines.append(f"   - against: {md(reason)}")
    rest = report["candidates"][CANDIDATES_SHOWN:]
    if rest:
        lines += ["", "Less likely: " + md(", ".join(f"{c['label']} ({_number(c['score'])})" for c in rest)) + "."]


def _chain(path: dict[str, Any]) -> list[str]:
    """A causal chain, one step per line with its source."""
    return [f"   - {md(step.get('from_label', step['from']))} → ({md(step['sign'])}) "
            f"{md(step.get('to_label', step['to']))}: {md(step.get('source') or 'no source')}"
            for step in path.get("steps", [])]


def _alerts(report: dict[str, Any], lines: list[str]) -> None:
    if not report["alerts"]:
        return
    lines += ["", "#### Alerts", ""]
    for alert in report["alerts"]:
        lines.append(f"- **{md(alert['label'])}** ({md(alert.get('severity', ''))}): {md(alert['message'])}")
        for chain in alert.get("explanation", [])[:1]:
            lines.append(f"   - why {md(chain.get('finding', ''))} is not high:")
            lines += ["   " + step for step in _chain(chain)]


def _explanations(report: dict[str, Any], lines: list[str]) -> None:
    if not report["explanations"] and not report.get("unexplained"):
        return
    lines += ["", "#### Why each abnormal finding is abnormal (first causal chain; a source on every step)", ""]
    values = {f["code"]: f for f in report["findings"]}
    for e in report["explanations"]:
        shown = _value(values.get(e["finding"], {}))
        lines.append(f"- **{md(e['finding'])} {md(e['direction'])}**{' (' + md(shown) + ')' if shown else ''}")
        if e["paths"]:
            lines += _chain(e["paths"][0])
    if report.get("unexplained"):
        lines += ["", "No causal path in the ontology for: " + md(", ".join(report["unexplained"])) + "."]


def _next_tests(report: dict[str, Any], lines: list[str]) -> None:
    tests = report.get("next_tests") or []
    if not tests:
        return
    lines += ["", "#### What to test next", ""]
    lines += [f"- **{md(t['test'])}**: {md('; '.join(t.get('why', [])))}" for t in tests[:TESTS_SHOWN]]
    if len(tests) > TESTS_SHOWN:
        lines.append(f"- and {len(tests) - TESTS_SHOWN} more in the full report")


def _rejected(report: dict[str, Any], lines: list[str], sources: Sequence[str]) -> None:
    rejected = report["observations"]["rejected"]
    if not rejected:
        return
    lines += ["", f"#### Observations not used ({len(rejected)})", ""]
    for r in rejected:
        index = r.get("index")
        where = sources[index] if isinstance(index, int) and 0 <= index < len(sources) else f"observation {index}"
        code = f" ({md(r['code'])})" if r.get("code") else ""
        lines.append(f"- {md(where)}{code}: {md(r.get('reason', ''))}")
