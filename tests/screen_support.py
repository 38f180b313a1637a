"""Helpers for the screen tests: write long-format cohorts, read results, and the engine's own verdicts."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import duckdb

from kg.csvinput import read_csv
from kg.findings import number
from kg.patient import parse_time

HEADER = ["patient_id", "time", "code", "value", "unit", "comparator", "site", "gene", "agent"]


def long_rows(data: dict) -> list[list[str]]:
    """A patient JSON object as long-format rows (DESIGN.md section 3)."""
    pid = data["id"]
    rows = []
    if "age_years" in data:
        rows.append([pid, "", "age_years", str(data["age_years"]), ""])
    if "sex" in data:
        rows.append([pid, "", "sex", data["sex"], ""])
    for c in data.get("conditions", []):
        rows.append([pid, "", c["code"], c.get("status", "confirmed"), "", "", "", "", c.get("agent", "")])
    for o in data["observations"]:
        value = ("true" if o["present"] else "false") if "present" in o else str(o.get("value", ""))
        rows.append([pid, o.get("time", ""), o["code"], value, o.get("unit", ""), o.get("comparator") or "",
                     o.get("site", ""), o.get("gene", ""), ""])
    return [r + [""] * (len(HEADER) - len(r)) for r in rows]


def write_long(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def example_rows(folder: Path) -> list[list[str]]:
    rows = []
    for file in sorted(folder.glob("*.json")):
        if file.name != "expected.json":
            rows += long_rows(json.loads(file.read_text()))
    return rows


def read_result(path: Path) -> list[dict]:
    scan = f"read_parquet('{path}')" if str(path).endswith(".parquet") else \
        f"read_csv('{path}', types={{'patient_id': 'VARCHAR', 'time': 'VARCHAR'}})"
    relation = duckdb.sql(f"SELECT * FROM {scan} ORDER BY patient_id, time NULLS FIRST")
    columns = [d[0] for d in relation.description]
    return [dict(zip(columns, row)) for row in relation.fetchall()]


def shown(value) -> float | int | None:
    """A screen number as the report prints it (kg.findings.number)."""
    return None if value is None else number(Fraction(str(value)).limit_denominator(10**9))


def verdicts(kb, row: dict) -> dict[str, tuple]:
    return {c.id: (row[f"{c.id}_status"], shown(row[f"{c.id}_score"]), shown(row[f"{c.id}_score_min"]),
                   shown(row[f"{c.id}_score_max"])) for c in kb.criteria}


def engine_verdicts(engine, patient, at, window: timedelta | None) -> dict[str, tuple]:
    """What kg.Engine.explain computes for the criteria at ``at`` (Engine.evaluate_criteria)."""
    out = {}
    for result in engine.evaluate_criteria(patient, at=at, window=window):
        d = result.to_dict(engine.kb)
        low, high = d["score_range"] if d["score_range"] else (None, None)
        out[d["id"]] = (d["status"], d["score"], low, high)
    return out


def mismatches(engine, csv_path: Path, result: list[dict], window: timedelta | None = timedelta(hours=72)) -> list[str]:
    """Every (patient, time, criterion) where the screen's row differs from the engine's evaluation."""
    kb = engine.kb
    patients = {p.id: p for p, _ in read_csv(csv_path.read_text(encoding="utf-8"), kb)}
    problems = []
    for row in result:
        patient = patients[row["patient_id"]]
        at = parse_time(row["time"]) if row["time"] else None
        expected = engine_verdicts(engine, patient, at, window)
        for cid, got in verdicts(kb, row).items():
            if got != expected[cid]:
                problems.append(f"{row['patient_id']} at {row['time']} {cid}: screen {got} engine {expected[cid]}")
    return problems


def expected_points(kb, csv_path: Path) -> set[tuple[str, str | None]]:
    """(patient, time) pairs the screen must evaluate: each distinct usable observation time."""
    out = set()
    for patient, _ in read_csv(csv_path.read_text(encoding="utf-8"), kb):
        times = {o.time for o in patient.observations if o.time is not None}
        out |= {(patient.id, t.isoformat().replace("+00:00", "Z")) for t in times} or {(patient.id, None)}
    return out
