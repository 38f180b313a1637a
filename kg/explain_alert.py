"""Explain one lab value that another tool flagged ("ferritin 18,000 ng/mL"): what it means and why.

An EHR rule, a laboratory system or a screening job raises an alert on a single
value; :func:`explain_alert` answers with a stable, JSON-serialisable object
(schema ``mas-kg/alert-explanation/v1``):

* ``interpretation``: high, low or normal against the age- and sex-appropriate
  reference range (or the reporting laboratory's, if given with the patient),
  in the test's canonical unit, with the range's source;
* ``causal_chains``: the sign-consistent chains from a root cause to the
  measured quantity, each step with its relation and sources;
* ``criteria``: every criteria set or score that reads this test, with the
  verdict of its item(s) for this value;
* ``syndromes``: the candidate syndromes this value speaks for or against, by
  the ranking rules that read it, and the criteria sets it feeds for each;
* ``discriminating_tests``: the other tests that would decide those criteria
  sets or separate the two leading syndromes;
* with ``patient``: the same, chosen for that patient (chains from the
  patient's own conditions first, sharing mechanisms with the patient's other
  findings), the patient's alerts that involve this test (e.g. the ESR/CRP
  discordance, with its chains) and the test's trend.

Without a patient nothing is known of the person, so context-dependent
criteria sets (e.g. the 2016 MAS criteria need sJIA) say ``not_applicable`` and
the verdict of the whole set is not the point: the item verdicts are.

>>> import kg
>>> answer = kg.Engine().explain_alert("ferritin", 18000, "ng/mL", age_years=7)
>>> answer["interpretation"]["direction"], answer["causal_chains"][0]["steps"][-1]["to"]
('high', 'mkg:Ferritin')
>>> [(i["id"], i["status"]) for c in answer["criteria"] if c["id"] == "mas2016" for i in c["items"]]
[('mas2016.ferritin', 'met')]
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .assessment import next_tests
from .errors import InputError
from .findings import number, ranges_for
from .patient import Patient, parse_time, read_patient

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["SCHEMA", "explain_alert", "explain_alert_with"]

SCHEMA = "mas-kg/alert-explanation/v1"
_DEFAULT: list[Engine] = []
_DEFAULT_LOCK = threading.Lock()


def explain_alert(code: str, value: Any, unit: str, *, patient: str | Path | dict[str, Any] | Patient | None = None,
                  time: datetime | str | None = None, comparator: str | None = None, age_years: Any = None,
                  sex: str | None = None) -> dict[str, Any]:
    """:meth:`kg.Engine.explain_alert` on a shared default engine (loaded on first use; calls are serialised)."""
    from .engine import Engine

    with _DEFAULT_LOCK:
        if not _DEFAULT:
            _DEFAULT.append(Engine())
        return explain_alert_with(_DEFAULT[0], code, value, unit, patient=patient, time=time, comparator=comparator,
                                  age_years=age_years, sex=sex)


def explain_alert_with(engine: Engine, code: str, value: Any, unit: str, *,
                       patient: str | Path | dict[str, Any] | Patient | None = None,
                       time: datetime | str | None = None, comparator: str | None = None, age_years: Any = None,
                       sex: str | None = None) -> dict[str, Any]:
    """The explanation of one value (see the module docstring); InputError if the value cannot be used."""
    kb = engine.kb
    term = kb.resolve_code(code) if isinstance(code, str) else None
    if term is None:
        raise InputError(f"unknown code {code!r}")
    if term.kind != "LabTest":
        raise InputError(f"{code!r} is not a laboratory test (a {term.kind}); explain_alert explains a lab value")
    test = kb.lab_tests[term.id]
    when = _time(time)
    observation = {"code": code, "value": value, "unit": unit, "comparator": comparator,
                   "time": when.isoformat() if when else None}
    if patient is None:
        subject = read_patient({"id": "alert", "age_years": age_years, "sex": sex, "observations": [observation]}, kb)
        index = 0
        if subject.rejected:
            raise InputError(f"the alert value cannot be used: {subject.rejected[0].reason}")
    else:
        if age_years is not None or sex is not None:
            raise InputError("give age_years and sex in the patient, not beside it")
        subject, index = _with_value(engine, patient, observation)
    # evaluated when the value was taken, so that it is in force even if the patient has later values
    report = engine.explain(subject, at=when).to_dict()
    finding = next(f for f in report["findings"] if f["index"] == index)
    chains = next((e["paths"] for e in report["explanations"] if e["finding"] == test.notation), [])
    criteria = _criteria(kb, test.id, report["criteria"])
    syndromes = _syndromes(kb, test.id, report, criteria, ranked=patient is not None)
    answer = {
        "schema": SCHEMA,
        "alert": {"code": code, "test": test.notation, "term": test.id, "label": term.label, "loinc": list(test.loinc),
                  "value": finding["given"]["value"], "unit": finding["given"]["unit"], "comparator": comparator,
                  "time": finding["time"]},
        "patient": report["patient"] if patient is not None else None,
        "context": {"age_years": report["age_years"], "sex": subject.sex,
                    "conditions": [c["code"] for c in report["conditions"]]},
        "summary": _summary(test, finding, criteria, chains, syndromes),  # patient alerts appended below
        "interpretation": _interpretation(kb, test, finding, subject),
        "causal_chains": chains,
        "criteria": criteria,
        "syndromes": syndromes,
        "discriminating_tests": _discriminating(kb, report, syndromes, criteria),
        "patient_specific": _patient_specific(report, test.notation, chains) if patient is not None else None,
        "ontology": report["ontology"],
    }
    if answer["patient_specific"]:
        answer["summary"] += "".join(f"; {a['message']}" for a in answer["patient_specific"]["alerts"])
    answer["sources"] = sorted(_sources(answer))
    return answer


def _time(time: datetime | str | None) -> datetime | None:
    if time is None or isinstance(time, datetime):
        return time
    try:
        return parse_time(time)
    except ValueError as error:
        raise InputError(f"time: {error}") from None


def _with_value(engine: Engine, patient: Any, observation: dict[str, Any]) -> tuple[Patient, int]:
    """The patient with the alert's value added as one more observation (index: after the patient's own)."""
    subject = patient if isinstance(patient, Patient) else engine.read(patient)
    read = read_patient({"id": subject.id, "observations": [observation]}, engine.kb)
    if read.rejected:
        raise InputError(f"the alert value cannot be used: {read.rejected[0].reason}")
    added = replace(read.observations[0], index=subject.given)
    return replace(subject, observations=subject.observations + (added,), given=subject.given + 1), subject.given


def _interpretation(kb: Any, test: Any, finding: dict[str, Any], subject: Patient) -> dict[str, Any]:
    """The verdict and every range it was judged against (one if age and sex pick one, else all candidates)."""
    phenotype = finding.get("phenotype")
    sign = kb.resolve_code(phenotype) if phenotype else None
    if finding.get("reference_range"):
        ranges = [finding["reference_range"]]
    elif test.high_rule is not None:  # e.g. fever: a rule, not a population range
        rule = test.high_rule
        ranges = [{"rule": f"{rule.comparator} {number(rule.threshold)} {rule.unit}", "source": rule.source}]
    else:
        bands = ranges_for(test, subject.age_years, subject.sex) or ranges_for(test, None, subject.sex)
        ranges = [{"low": number(r.low), "high": number(r.high), "unit": r.unit, "sex": r.sex,
                   "age_years": [number(r.min_age_years), number(r.max_age_years)], "source": r.source} for r in bands]
    return {"direction": finding["interpretation"], "value": finding["value"], "unit": finding["unit"],
            "reference_ranges": ranges, "basis": finding.get("interpretation_basis"),
            "phenotype": phenotype, "phenotype_label": sign.label if sign else None, "note": finding.get("note")}


def _summary(test: Any, finding: dict[str, Any], criteria: list[dict[str, Any]], chains: list[dict[str, Any]],
             syndromes: list[dict[str, Any]]) -> str:
    """One line a tool can show as it is."""
    given = finding["given"]
    value = f"{finding['comparator'] or ''}{given['value']} {given['unit']}"
    direction = finding["interpretation"] or "not interpretable against a reference range"
    parts = [f"{test.notation} {value} is {direction}"]
    met = [i["id"] for c in criteria for i in c["items"]  # a formula operand is 'met' when present: not shown
           if i["status"] == "met" and "term_range" not in i and i.get("points") != 0]
    if met:
        parts.append(f"meets {', '.join(met)}")
    if chains:
        parts.append(f"{len(chains)} causal chain{'s' if len(chains) > 1 else ''}, the first from {chains[0]['root_label']}")
    towards = [s["category"] for s in syndromes if s["direction"] == "for"]
    if towards:
        parts.append(f"points to {', '.join(towards)}")
    return "; ".join(parts)


def _reads(item: Any, test_id: str) -> bool:
    rule = item.measured_rule
    return item.analyte == test_id or (rule is not None and rule.analyte == test_id)


def _criteria(kb: Any, test_id: str, verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each criteria set that reads the test: its status and the verdicts of the items that read it."""
    out = []
    for entry in verdicts:
        items = kb.criteria_set(entry["id"]).items
        reading = {item_id for item_id, item in items.items() if _reads(item, test_id)}
        if not reading:
            continue
        shown = [_item(i) for i in entry["items"] if i["id"] in reading]  # parts are listed beside compounds
        out.append({"id": entry["id"], "label": entry["label"], "status": entry["status"], "score": entry["score"],
                    "cutoff": entry["cutoff"], "would_decide": entry["would_decide"], "items": shown,
                    "source": entry["source"], "sources": entry["sources"], "citation": entry["citation"]})
    return out


def _item(item: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "label", "status", "value", "unit", "points", "rule", "bands", "points_range", "coefficient",
            "term_range")
    return {k: item[k] for k in keep if k in item}


def _categories_of_criteria(kb: Any) -> dict[str, set[str]]:
    """criterion id -> the candidate categories its 'met' verdict speaks for (the ranking rules)."""
    by_term = {c.term: c.category for c in kb.candidates}
    out: dict[str, set[str]] = {}
    for rule in kb.evidence:
        if rule.criterion and rule.status == "met":
            out.setdefault(rule.criterion, set()).update(by_term[e.candidate] for e in rule.effects if e.weight > 0)
    return out


def _syndromes(kb: Any, test_id: str, report: dict[str, Any], criteria: list[dict[str, Any]], *,
               ranked: bool) -> list[dict[str, Any]]:
    """The candidates this value speaks for or against (its ranking rules), with the criteria sets it feeds
    whose verdict 'met' speaks for them; ``direction`` is for, against or neutral (it only feeds criteria)."""
    rules = {r.id for r in kb.evidence if r.analyte == test_id}
    fed = _categories_of_criteria(kb)
    out = []
    for candidate in report["candidates"]:
        evidence = [{"rule": e["rule"], "text": e["text"], "points": e["points"], "sources": e["sources"]}
                    for e in candidate["evidence"] if e["rule"] in rules]
        sets = [c["id"] for c in criteria if candidate["category"] in fed.get(c["id"], ())]
        if not evidence and not sets:
            continue
        points = sum(e["points"] for e in evidence)
        entry = {"category": candidate["category"], "label": candidate["label"], "id": candidate["id"],
                 "term": candidate["term"], "points": points,
                 "direction": "for" if points > 0 else "against" if points < 0 else "neutral",
                 "evidence": evidence, "criteria": sets}
        if ranked:
            entry.update(rank=candidate["rank"], score=candidate["score"])
        out.append(entry)
    if ranked:
        out.sort(key=lambda s: s["rank"])
    else:
        out.sort(key=lambda s: (-s["points"], -len(s["criteria"]), s["category"]))
    return out


def _discriminating(kb: Any, report: dict[str, Any], syndromes: list[dict[str, Any]],
                    criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tests that would decide the criteria sets this value feeds, or separate the two leading syndromes it
    speaks for (the report's next-test logic, restricted to them)."""
    leading = [s["category"] for s in syndromes if s["direction"] == "for"][:2]
    by_category = {c["category"]: c for c in report["candidates"]}
    fed = {c["id"] for c in criteria}
    tests = next_tests(kb, candidates=[by_category[c] for c in leading],
                       criteria=[c for c in report["criteria"] if c["id"] in fed])
    for test in tests:
        term = kb.resolve_code(test["test"])
        test["label"] = term.label if term else test["test"]
    return tests


def _patient_specific(report: dict[str, Any], notation: str, chains: list[dict[str, Any]]) -> dict[str, Any]:
    alerts = [a for a in report["alerts"] if any(e.get("code") == notation for e in a.get("evidence", []))]
    trend = next((t for t in report["trends"] if t["code"] == notation), None)
    also = sorted({code for chain in chains for code in chain["also_explains"]})
    return {"alerts": alerts, "trend": trend, "other_findings_explained_by_the_same_chains": also,
            "candidates": [{"category": c["category"], "rank": c["rank"], "score": c["score"]}
                           for c in report["candidates"]],
            "notes": report["notes"]}


def _sources(answer: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    found.update(r["source"] for r in answer["interpretation"]["reference_ranges"] if r.get("source"))
    for chain in answer["causal_chains"]:
        for step in chain["steps"]:
            found.update(step["sources"])
    for entry in answer["criteria"]:
        found.update(entry["sources"])
    for syndrome in answer["syndromes"]:
        for evidence in syndrome["evidence"]:
            found.update(evidence["sources"])
    if answer["patient_specific"]:
        for alert in answer["patient_specific"]["alerts"]:
            found.update(alert.get("sources", []))
            for chain in alert.get("explanation", []):
                for step in chain["steps"]:
                    found.update(step["sources"])
    return found
