"""The long CSV input: the same reports as the JSON form, several patients per file, bad input."""

from __future__ import annotations

import csv
import io
import json
from itertools import zip_longest

import pytest

from conftest import EXAMPLES
from conftest import run_cli as run
from kg.csvinput import read_csv

COLUMNS = ["patient_id", "time", "code", "value", "unit", "comparator", "site", "gene", "agent"]
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.json") if p.stem != "expected")


def csv_rows(patient: dict) -> list[dict]:
    """The long-CSV rows of a JSON patient, written from the contract (DESIGN.md section 3) alone."""
    pid = patient["id"]
    rows = []
    if "age_years" in patient:
        rows.append({"patient_id": pid, "code": "age_years", "value": repr(patient["age_years"])})
    if "sex" in patient:
        rows.append({"patient_id": pid, "code": "sex", "value": patient["sex"]})
    for condition in patient.get("conditions", []):
        rows.append({"patient_id": pid, "code": condition["code"], "value": condition.get("status", ""),
                     "agent": condition.get("agent", "")})
    for medication in patient.get("medications", []):
        rows.append({"patient_id": pid, "code": medication["code"], "time": medication.get("start", "")})
    for obs in patient["observations"]:
        row = {"patient_id": pid, "code": obs["code"], "time": obs.get("time", ""), "unit": obs.get("unit", ""),
               "comparator": obs.get("comparator", ""), "site": obs.get("site", ""), "gene": obs.get("gene", "")}
        if "value" in obs:
            assert obs.get("present", True), "a sized finding that is absent has no CSV form"
            row["value"] = repr(obs["value"])
        elif "present" in obs:
            row["value"] = "true" if obs["present"] else "false"
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def comparable(report) -> dict:
    data = report.to_dict()
    data["observations"] = {k: v for k, v in data["observations"].items() if k != "items"}
    return data


@pytest.mark.parametrize("name", NAMES)
def test_csv_gives_the_same_report_as_json(engine, name):
    patient = example(name)
    [(read, lines)] = read_csv(to_csv(csv_rows(patient)), engine.kb)
    assert len(lines) == len(patient["observations"])
    assert comparable(engine.explain(read)) == comparable(engine.explain(patient))


def test_several_patients_interleaved_give_one_report_each(engine):
    patients = [example(name) for name in NAMES]
    per_patient = [csv_rows(p) for p in patients]
    interleaved = [row for group in zip_longest(*per_patient) for row in group if row is not None]
    read = read_csv(to_csv(interleaved), engine.kb)
    assert [p.id for p, _ in read] == [p["id"] for p in patients]
    for (patient, _), original in zip(read, patients):
        assert comparable(engine.explain(patient)) == comparable(engine.explain(original))


def test_cli_reads_csv_by_name_and_content(tmp_path):
    rows = [row for name in ("sjia-mas", "sepsis-dic") for row in csv_rows(example(name))]
    (tmp_path / "two.csv").write_text(to_csv(rows))
    (tmp_path / "two.txt").write_text(to_csv(rows))  # no .csv: recognised by its header
    for file in ("two.csv", "two.txt"):
        result = run("explain", file, cwd=tmp_path)
        assert result.returncode == 0 and result.stderr == ""
        assert [r["patient"] for r in json.loads(result.stdout)] == ["ex-sjia-mas", "ex-sepsis-dic"]
    nquads = run("explain", "two.csv", "--format", "nquads", cwd=tmp_path).stdout
    assert "patient/ex-sjia-mas/inferred" in nquads and "patient/ex-sepsis-dic/inferred" in nquads
    trig = run("explain", "two.csv", "--format", "trig", cwd=tmp_path)
    assert trig.returncode == 0 and "ex-sepsis-dic" in trig.stdout
    notes = run("explain", "two.csv", "--format", "text", cwd=tmp_path).stdout
    assert "ex-sjia-mas" in notes and "ex-sepsis-dic" in notes
    html = run("explain", "two.csv", "--format", "html", cwd=tmp_path)
    assert html.returncode == 2 and "shows one patient; this file holds 2" in html.stderr and html.stdout == ""
    (tmp_path / "one.csv").write_text(to_csv(csv_rows(example("sjia-mas"))))
    assert run("graph", "--patient", "one.csv", "--out", "one.html", cwd=tmp_path).returncode == 0
    query = run("query", "patient-candidates", "--patient", "two.csv", "--param", "patient=ex-sepsis-dic",
                "--format", "json", cwd=tmp_path)
    assert query.returncode == 0 and json.loads(query.stdout)["results"]["bindings"]


def test_rejected_rows_are_reported_with_their_line(tmp_path):
    text = ("patient_id,time,code,value,unit\n"
            "p1,,age_years,7,\n"
            "p1,2024-05-01,ferritin,12000,ng/mL\n"
            "p1,2024-05-01,platelets,\"12,000\",10*9/L\n"
            "p1,2024-05-01,ferriton,1,ng/mL\n")
    (tmp_path / "p.csv").write_text(text)
    result = run("explain", "p.csv", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "mas-kg: warning: p.csv:4: patient p1: observation 1 (platelets): value '12,000' is not a finite number",
        "mas-kg: warning: p.csv:5: patient p1: observation 2 (ferriton): unknown code 'ferriton'"]
    report = json.loads(result.stdout)[0]
    assert report["observations"]["used"] + len(report["observations"]["rejected"]) == 3


@pytest.mark.parametrize("text, message", [
    ("", "p.csv: empty file"),
    ("patient_id,time,code,value\n", "p.csv:1: missing column 'unit'"),
    ("patient_id,time,code,value,unit,comparitor\n", "p.csv:1: unknown column 'comparitor'"),
    ("patient_id,time,code,value,unit\n", "p.csv: no rows after the header"),
    ("patient_id,time,code,value,unit\np1,,ferritin,1\n", "p.csv:2: 4 fields, the header has 5"),
    ("patient_id,time,code,value,unit\n,,ferritin,1,ng/mL\n", "p.csv:2: empty patient_id"),
    ("patient_id,time,code,value,unit\np1,,age_years,seven,\n", "p.csv:2: age_years 'seven' is not a number"),
    ("patient_id,time,code,value,unit\np1,,sex,female,\np1,,sex,male,\n", "p.csv:3: a second, different sex"),
    ("patient_id,time,code,value,unit\np1,,age_years,-3,\np1,,ferritin,1,ng/mL\n",
     "p.csv: patient 'p1': age_years -3 is impossible"),
    ("patient_id,time,code,value,unit\np1,,ferriton,1,ng/mL\n", "p.csv: no usable observation for patient p1"),
])
def test_bad_csv_is_one_line_and_exit_2(tmp_path, text, message):
    (tmp_path / "p.csv").write_text(text)
    result = run("explain", "p.csv", "--out", "r.json", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    *warnings, error = result.stderr.splitlines()  # a rejected row warns first, as in the JSON form
    assert error.startswith("mas-kg: error: ") and message in error
    assert all(w.startswith("mas-kg: warning: p.csv:") for w in warnings)
    assert not (tmp_path / "r.json").exists()
