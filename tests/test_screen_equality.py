"""Acceptance: the cohort screen gives what ``explain`` gives, for every patient and every time point.

2,000 synthetic patients (:mod:`kg.screen.synthetic`: values on every cut-off in mixed units, censored
values, sites, genes, ties, untimed facts, gaps of exactly 72 h, about 3 % bad rows) are written as
a long CSV and screened; the same file is read with :func:`kg.csvinput.read_csv_file`.  The expected
side is computed once: ``engine.explain(patient, at=t)`` at each patient's latest time point
(its ``criteria`` entries, numbers as the report rounds them), and at every time point the code
path explain uses (``Engine.evaluate_criteria`` with the 72 h window; exact values, compared with a
relative tolerance of 1e-9).  Each engine's rows are compared with it: the row set, then status, score,
score_min and score_max of every criteria set.  Times are compared as instants; the screen's text
must be the UTC form (``...Z``).
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kg.csvinput import read_csv_file
from kg.patient import parse_time
from kg.screen import screen
from kg.screen.synthetic import write_cohort_csv

PATIENTS = 2000
SEED = 20240302
WINDOW = timedelta(hours=72)
SHOWN = 4  # example rows printed per mismatch class


@dataclass(frozen=True)
class Verdict:
    status: str
    score: Fraction | float | int | None
    low: Fraction | float | int | None
    high: Fraction | float | int | None
    exact: bool  # Fractions from evaluate_set; else the report's rounded numbers
    source: str  # "explain" | "evaluate_set"


@dataclass
class Expected:
    csv: Path
    input_rows: int
    patients: int
    rejected: Counter  # reason -> rows, as read_csv/read_patient reject them
    verdicts: dict[tuple[str, datetime | None], dict[str, list[Verdict]]]  # explain first, where called
    rows_of: dict[str, list[str]]
    criteria: list[str]


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(timezone.utc)


def _evaluate(engine, patient, at) -> dict[str, Verdict]:
    """The criteria at ``at`` by the exact code path of ``Engine.explain`` (Engine.evaluate_criteria)."""
    out = {}
    for r in engine.evaluate_criteria(patient, at=at, window=WINDOW):
        low, high = r.score_range or (None, None)
        out[r.criteria.id] = Verdict(r.status, r.score, low, high, True, "evaluate_set")
    return out


def _from_report(report) -> dict[str, Verdict]:
    out = {}
    for entry in report.to_dict()["criteria"]:
        low, high = entry["score_range"] or (None, None)
        out[entry["id"]] = Verdict(entry["status"], entry["score"], low, high, False, "explain")
    return out


@pytest.fixture(scope="module")
def expected(tmp_path_factory, engine) -> Expected:
    """The explain side, computed once for every engine."""
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    written = write_cohort_csv(path, PATIENTS, seed=SEED)
    rows_of: dict[str, list[str]] = defaultdict(list)
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=2):
        rows_of[next(csv.reader([line]))[0]].append(f"line {line_no}: {line}")
    patients = read_csv_file(path, engine.kb)
    verdicts: dict[tuple[str, datetime | None], dict[str, list[Verdict]]] = {}
    for patient, _ in patients:
        times = sorted({_utc(o.time) for o in patient.observations if o.time is not None})
        for at in times[:-1]:  # the explain report costs ~30 ms: only at the latest time point
            verdicts[(patient.id, at)] = {cid: [v] for cid, v in _evaluate(engine, patient, at).items()}
        latest = times[-1] if times else None
        report = engine.explain(patient, at=latest, window=WINDOW)
        at_text = report.to_dict()["at"]
        assert (_utc(parse_time(at_text)) == latest) if latest else at_text is None
        exact = _evaluate(engine, patient, latest)  # also exactly, beyond the report's 6 digits
        verdicts[(patient.id, latest)] = {cid: [v, exact[cid]] for cid, v in _from_report(report).items()}
    return Expected(csv=path, input_rows=written, patients=len(patients),
                    rejected=Counter(r.reason for p, _ in patients for r in p.rejected), verdicts=verdicts,
                    rows_of=rows_of,
                    criteria=[c.id for c in engine.kb.criteria])


def _same_number(got, want, exact: bool) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if isinstance(got, float) and math.isnan(got):
        return False
    if exact:
        return math.isclose(got, float(want), rel_tol=1e-9, abs_tol=1e-12)
    # the report rounds to 6 significant digits (kg.findings.number): round the screen's double the same way
    # (an exact value on a rounding tie, e.g. 15.73505, may come out of SQL one ulp either side of it)
    return any(f"{got * (1 + e):.6g}" == f"{want:.6g}" for e in (0, -1e-12, 1e-12))


def _engine(request, name: str):
    if name == "duckdb":
        return "duckdb"
    try:
        return request.getfixturevalue("spark_backend")
    except pytest.FixtureLookupError:
        pytest.skip("no spark_backend fixture in tests/conftest.py yet")


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["duckdb", "spark"])
def test_screen_equals_explain(engine_name, request, expected: Expected, tmp_path):
    backend = _engine(request, engine_name)
    out = tmp_path / "screen.parquet"
    summary = screen(expected.csv, out=out, engine=backend, window=WINDOW)
    table = pq.read_table(out).to_pylist()

    # the row set: one row per patient and distinct usable observation time (NULL time: none)
    got_keys = Counter()
    rows = {}
    bad_text = []
    for row in table:
        moment = _utc(parse_time(row["time"])) if row["time"] is not None else None
        if moment is not None and row["time"] != moment.strftime("%Y-%m-%dT%H:%M:%SZ"):
            bad_text.append(row["time"])
        key = (row["patient_id"], moment)
        got_keys[key] += 1
        rows[key] = row
    duplicates = [k for k, n in got_keys.items() if n > 1]
    missing = sorted(set(expected.verdicts) - set(got_keys), key=str)
    extra = sorted(set(got_keys) - set(expected.verdicts), key=str)
    problems = []
    if bad_text:
        problems.append(f"{len(bad_text)} times not written as UTC ...Z text, e.g. {bad_text[:3]}")
    for label, keys in (("duplicate rows", duplicates), ("rows missing from the screen", missing),
                        ("rows the screen has but explain has no time point for", extra)):
        if keys:
            problems.append(f"{len(keys)} {label}, e.g. " + "; ".join(f"{p} @ {t}" for p, t in keys[:SHOWN]))
            for pid, _ in keys[:2]:
                problems.append("  rows of " + pid + ":\n    " + "\n    ".join(expected.rows_of[pid]))

    # every verdict
    classes: dict[tuple, list[str]] = defaultdict(list)
    compared = 0
    for key, want_all in expected.verdicts.items():
        row = rows.get(key)
        if row is None:
            continue
        for cid, want in ((cid, w) for cid in expected.criteria for w in want_all[cid]):
            got = (row[f"{cid}_status"], row[f"{cid}_score"], row[f"{cid}_score_min"], row[f"{cid}_score_max"])
            compared += 1
            fields = []
            if got[0] != want.status:
                fields.append("status")
            for name, g, w in zip(("score", "score_min", "score_max"), got[1:], (want.score, want.low, want.high)):
                if not _same_number(g, w, want.exact):
                    fields.append(name)
            if fields:
                pid, at = key
                classes[(cid, tuple(fields), got[0], want.status)].append(
                    f"{pid} @ {at.strftime('%Y-%m-%dT%H:%M:%SZ') if at else None} ({want.source}): "
                    f"screen {got} vs explain {(want.status, _show(want.score), _show(want.low), _show(want.high))}")

    for (cid, fields, got_status, want_status), examples in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        problems.append(f"{cid}: {'/'.join(fields)} differ in {len(examples)} rows (screen {got_status}, "
                        f"explain {want_status}), e.g.:")
        for example in examples[:SHOWN]:
            problems.append("    " + example)
        pid = examples[0].split(" @ ")[0]
        problems.append(f"    rows of {pid}:\n      " + "\n      ".join(expected.rows_of[pid]))

    # the summary
    rejected = sum(summary.rejected.values())
    for label, got_n, want_n in (("patients", summary.patients, expected.patients),
                                 ("input_rows", summary.input_rows, expected.input_rows),
                                 ("rejected rows", rejected, sum(expected.rejected.values())),
                                 ("evaluation_rows", summary.evaluation_rows, len(expected.verdicts))):
        if got_n != want_n:
            problems.append(f"summary {label}: screen {got_n}, read_csv/explain {want_n}")
    if rejected != sum(expected.rejected.values()):  # the reasons side by side (their wording may differ)
        for side, counts in (("screen", summary.rejected), ("read_csv", expected.rejected)):
            problems.append(f"  rejected by {side}:\n    " + "\n    ".join(
                f"{n:>6}  {reason}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
    hits = {cid: sum(v[cid][0].status == "met" for v in expected.verdicts.values()) for cid in expected.criteria}
    if dict(summary.hits) != hits:
        problems.append(f"summary hits: screen {dict(summary.hits)}, explain {hits}")

    assert not problems, (f"{engine_name}: {compared} verdicts compared over {len(expected.verdicts)} time points; "
                          "mismatches:\n" + "\n".join(problems))


def _show(value):
    return float(value) if isinstance(value, Fraction) else value
