"""Serial labs: per-analyte trends and the alerts the ontology defines over them.

A trend lists every timed value of a lab up to the evaluation time (in the
test's canonical unit) with the absolute and relative change from the first,
the peak and the nadir, and the times.  Alerts are read from the ontology
(``ontology/alerts.ttl``): a *discordance* of two labs at the evaluation time,
a *trend* (every part: the latest value has moved by a relative change from the
peak or nadir of the look-back before it) and a *transition* (an earlier high
value, then other alerts).  Relative changes and look-backs are engine settings
in the ontology, not validated cut-offs; a trend names the therapies started
within its interval.  Censored values (``>``/``<``) take no
part in changes: they are listed, never read as numbers.

>>> from kg.knowledge import load_knowledge
>>> from kg.patient import read_patient
>>> kb = load_knowledge()
>>> patient = read_patient({"id": "t", "age_years": 8, "observations": [
...     {"code": "platelets", "value": 520, "unit": "10*9/L", "time": "2024-03-01"},
...     {"code": "platelets", "value": 180, "unit": "10*9/L", "time": "2024-03-03"}]}, kb)
>>> series = lab_series(patient, None, kb)
>>> series["mkg:PlateletCountTest"].change_from_peak.relative
Fraction(-17, 26)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Iterable

from .findings import Finding, interpret, number
from .knowledge import AlertRule, KnowledgeBase
from .patient import Observation, Patient
from .units import UnitError, convert

__all__ = ["Point", "Change", "Series", "lab_series", "evaluate_alerts", "series_to_dict"]


@dataclass(frozen=True, slots=True)
class Point:
    time: datetime
    value: Fraction  # in the test's canonical unit
    observation: Observation

    def to_dict(self) -> dict[str, Any]:
        return {"time": _iso(self.time), "value": number(self.value), "index": self.observation.index}


@dataclass(frozen=True, slots=True)
class Change:
    """From ``start`` to ``end``: absolute and relative (None when ``start`` is 0) change."""

    start: Point
    end: Point

    @property
    def absolute(self) -> Fraction:
        return self.end.value - self.start.value

    @property
    def relative(self) -> Fraction | None:
        return None if self.start.value == 0 else self.absolute / self.start.value

    @property
    def hours(self) -> float:
        return (self.end.time - self.start.time).total_seconds() / 3600

    def to_dict(self) -> dict[str, Any]:
        rel = self.relative
        return {"from": self.start.to_dict(), "to": self.end.to_dict(), "absolute": number(self.absolute),
                "relative": None if rel is None else round(float(rel), 4), "hours": round(self.hours, 2)}


@dataclass(frozen=True, slots=True)
class Series:
    test: str
    code: str
    unit: str
    points: tuple[Point, ...]  # numeric values, oldest first
    censored: tuple[Observation, ...]

    @property
    def latest(self) -> Point:
        return self.points[-1]

    @property
    def change(self) -> Change:
        return Change(self.points[0], self.latest)

    @property
    def peak(self) -> Point:
        return _peak(self.points)

    @property
    def nadir(self) -> Point:
        return _nadir(self.points)

    @property
    def change_from_peak(self) -> Change:
        return Change(self.peak, self.latest)

    @property
    def change_from_nadir(self) -> Change:
        return Change(self.nadir, self.latest)

    def before(self, end: Point, hours: Fraction | None) -> list[Point]:
        """The values strictly before ``end`` and within ``hours`` of it."""
        earliest = end.time - timedelta(hours=float(hours)) if hours is not None else None
        return [p for p in self.points if p.time < end.time and (earliest is None or p.time >= earliest)]


def _peak(points: Iterable[Point]) -> Point:  # the earliest of equal highs
    return max(points, key=lambda p: (p.value, -p.time.timestamp()))


def _nadir(points: Iterable[Point]) -> Point:  # the earliest of equal lows
    return min(points, key=lambda p: (p.value, p.time.timestamp()))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def lab_series(patient: Patient, at: datetime | None, kb: KnowledgeBase) -> dict[str, Series]:
    """Every lab with at least two timed values up to ``at``: its series, oldest first."""
    by_test: dict[str, list[Observation]] = {}
    for obs in patient.observations:
        if obs.kind == "lab" and obs.time is not None and (at is None or obs.time <= at):
            by_test.setdefault(obs.term, []).append(obs)
    out = {}
    for term, observations in sorted(by_test.items()):
        test = kb.lab_tests[term]
        points, censored = [], []
        for obs in sorted(observations, key=lambda o: (o.time, o.index)):
            if obs.comparator is not None:
                censored.append(obs)
                continue
            try:
                value = convert(obs.value, obs.unit, test.canonical_unit,  # type: ignore[arg-type]
                                analyte_kind=test.quantity_kind, molar=test.molar)
            except UnitError:
                continue  # e.g. sCD25 in pg/mL: kept but not comparable
            points.append(Point(obs.time, value, obs))  # type: ignore[arg-type]
        if len(points) >= 2:
            out[term] = Series(term, test.notation, test.canonical_unit, tuple(points), tuple(censored))
    return out


def series_to_dict(series: Series) -> dict[str, Any]:
    change = series.change
    return {"code": series.code, "unit": series.unit, "points": [p.to_dict() for p in series.points],
            "direction": "rising" if change.absolute > 0 else "falling" if change.absolute < 0 else "unchanged",
            "change": change.to_dict(), "peak": series.peak.to_dict(), "nadir": series.nadir.to_dict(),
            "change_from_peak": series.change_from_peak.to_dict(),
            "change_from_nadir": series.change_from_nadir.to_dict(),
            "censored": [{"index": o.index, "time": _iso(o.time), "comparator": o.comparator,  # type: ignore[arg-type]
                          "value": number(o.value), "unit": o.unit} for o in series.censored]}


def evaluate_alerts(rules: tuple[AlertRule, ...], *, series: dict[str, Series], findings: list[Finding],
                    patient: Patient, kb: KnowledgeBase, in_force: set[int]) -> list[dict[str, Any]]:
    """The alerts that fire, in the ontology's order; transitions see the alerts before them.

    A trend is read only when the latest value of each of its labs is in force
    (within the look-back window of the evaluation time).
    """
    fired: dict[str, dict[str, Any]] = {}
    at_now = {f.term: f for f in findings if f.kind == "lab"}
    for rule in sorted(rules, key=lambda r: (r.kind == "transition", r.order, r.code)):
        if rule.kind == "discordance":
            alert = _discordance(rule, at_now, kb)
        elif rule.kind == "trend":
            alert = _trend(rule, series, kb, in_force, patient)
        elif rule.kind == "transition":
            alert = _transition(rule, series, fired, patient, kb, in_force)
        else:
            alert = None
        if alert is not None:
            fired[rule.code] = alert
    return [fired[r.code] for r in rules if r.code in fired]


def _alert(rule: AlertRule, message: str, evidence: list[dict[str, Any]]) -> dict[str, Any]:
    return {"code": rule.code, "label": rule.label, "severity": rule.severity, "message": message,
            "evidence": evidence, "definition": rule.definition, "sources": list(rule.sources),
            "setting_note": rule.setting_note or None}


def _value_text(value: Fraction, unit: str) -> str:
    return f"{number(value):g} {unit}"


def _discordance(rule: AlertRule, at_now: dict[str, Finding], kb: KnowledgeBase) -> dict[str, Any] | None:
    wanted = [(t, {"high"}) for t in rule.high_analytes] + [(t, {"normal", "low"}) for t in rule.not_high_analytes]
    evidence, parts = [], []
    for test, allowed in wanted:
        finding = at_now.get(test)
        if finding is None or finding.interpretation not in allowed or finding.value is None:
            return None
        evidence.append({"code": finding.code, "value": number(finding.value), "unit": finding.unit,
                         "interpretation": finding.interpretation,
                         "time": _iso(finding.observation.time) if finding.observation.time else None})
        parts.append(f"{kb.lab_tests[test].notation.upper()} {finding.interpretation} "
                     f"({_value_text(finding.value, finding.unit or '')})")
    return _alert(rule, f"{rule.label}: " + " while ".join(parts), evidence)


def _moved(series: Series, direction: str, change: Fraction, lookback: Fraction | None) -> Change | None:
    """The move of the latest value from the look-back's peak (falling) or nadir (rising), if large enough."""
    earlier = series.before(series.latest, lookback)
    if not earlier:
        return None
    if direction == "falling":
        moved = Change(_peak(earlier), series.latest)
        return moved if moved.start.value > 0 and -moved.absolute >= change * moved.start.value else None
    reference = _nadir(earlier)
    moved = Change(reference, series.latest)
    return moved if moved.absolute > 0 and moved.absolute >= change * reference.value else None


def _trend(rule: AlertRule, series: dict[str, Series], kb: KnowledgeBase, in_force: set[int],
           patient: Patient) -> dict[str, Any] | None:
    texts, evidence, moves = [], [], []
    for part in rule.parts:
        s = series.get(part.analyte)
        if s is None or s.latest.observation.index not in in_force:
            return None
        moved = _moved(s, part.direction, part.relative_change, rule.lookback_hours)
        if moved is None:
            return None
        rel = moved.relative
        pct = f"{abs(float(rel)) * 100:.0f}%" if rel is not None else "from zero"
        verb = "fell" if part.direction == "falling" else "rose"
        texts.append(f"{kb.lab_tests[part.analyte].label} {verb} {pct} from {_value_text(moved.start.value, s.unit)} "
                     f"({_iso(moved.start.time)}) to {_value_text(moved.end.value, s.unit)} ({_iso(moved.end.time)})")
        evidence.append({"code": s.code, "unit": s.unit, "direction": part.direction,
                         "threshold": float(part.relative_change), **moved.to_dict()})
        moves.append(moved)
    alert = _alert(rule, f"{rule.label}: " + "; ".join(texts), evidence)
    # a therapy started within the interval may be why the lab moved
    start, end = min(m.start.time for m in moves), max(m.end.time for m in moves)
    started = [m for m in patient.medications if m.start is not None and start <= m.start <= end]
    if started:
        alert["therapies_started"] = [{"code": m.code, "therapy": m.term, "start": _iso(m.start)}  # type: ignore[arg-type]
                                      for m in started]
        names = ", ".join(f"{m.code} from {_iso(m.start)}" for m in started)  # type: ignore[arg-type]
        alert["message"] += f" (started in this interval: {names})"
    return alert


def _transition(rule: AlertRule, series: dict[str, Series], fired: dict[str, dict[str, Any]], patient: Patient,
                kb: KnowledgeBase, in_force: set[int]) -> dict[str, Any] | None:
    if not all(code in fired for code in rule.all_alerts):
        return None
    falling = [code for code in rule.any_alerts if code in fired]
    if rule.any_alerts and not falling:
        return None
    earlier_high = []
    for test in rule.earlier_high:
        s = series.get(test)
        if s is None or s.latest.observation.index not in in_force:
            continue
        for point in s.before(s.latest, rule.lookback_hours):
            if interpret(point.observation, patient, kb).interpretation == "high":
                earlier_high.append({"code": s.code, "unit": s.unit, **point.to_dict(), "interpretation": "high"})
                break
    if rule.earlier_high and not earlier_high:
        return None
    then = ", ".join(f"{e['code']} high ({e['value']:g} {e['unit']}, {e['time']})" for e in earlier_high)
    now = ", ".join(fired[c]["label"].lower() for c in (*falling, *rule.all_alerts))
    evidence = earlier_high + [{"alert": c} for c in (*falling, *rule.all_alerts)]
    return _alert(rule, f"{rule.label}: earlier {then}; now {now}", evidence)
