"""The cohort screen: one suite, run on every engine (DuckDB embedded; Spark local mode).

Every verdict is checked against the engine's own evaluation at the same time
point (the code path of ``kg.Engine.explain``), and the engines against each other.
"""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest

from conftest import EXAMPLES, run_cli
from kg.csvinput import read_csv
from kg.errors import InputError
from kg.screen import screen
from kg.screen.backend import DuckDBBackend
from screen_support import HEADER, example_rows, expected_points, mismatches, read_result, write_long

ENGINES = ["duckdb", "spark"]


@pytest.fixture(params=ENGINES)
def backend(request):
    if request.param == "spark":
        yield request.getfixturevalue("spark_backend")  # one session for the whole run: Spark starts slowly
        return
    with DuckDBBackend() as db:
        yield db


@pytest.fixture(scope="module")
def examples_csv(tmp_path_factory):
    return write_long(tmp_path_factory.mktemp("screen") / "examples.csv", example_rows(EXAMPLES))


def _screen(backend, source, tmp_path, name="out.parquet", **options):
    out = tmp_path / name
    summary = screen(source, out=out, engine=backend, **options)
    return summary, read_result(out)


def test_examples_equal_the_engine_at_every_time_point(backend, examples_csv, engine, tmp_path):
    summary, rows = _screen(backend, examples_csv, tmp_path)
    assert mismatches(engine, examples_csv, rows) == []
    assert {(r["patient_id"], r["time"]) for r in rows} == expected_points(engine.kb, examples_csv)
    assert summary.used_rows + sum(summary.rejected.values()) == summary.input_rows == len(example_rows(EXAMPLES))
    assert summary.hits["mas2016"] == sum(r["mas2016_status"] == "met" for r in rows) > 0


def test_engines_give_identical_rows(examples_csv, engine, tmp_path, request):
    spark = request.getfixturevalue("spark_backend")
    with DuckDBBackend() as db:
        _, embedded = _screen(db, examples_csv, tmp_path, "duck.csv")
    _, distributed = _screen(spark, examples_csv, tmp_path, "spark.csv")
    assert embedded == distributed
    assert (tmp_path / "duck.csv").read_bytes() == (tmp_path / "spark.csv").read_bytes()


CUTOFFS = [  # values exactly on published cut-offs, given in another unit (semantics 1)
    ["c1", "", "sJIA", "confirmed", ""],
    ["c1", "2024-01-01T08:00:00Z", "triglycerides", "265.71", "mg/dL"],  # = 3.0 mmol/L: HLH-2004 met
    ["c1", "2024-01-01T08:00:00Z", "temperature", "100.4", "[degF]"],  # = 38.0 Cel: fever
    ["c1", "2024-01-01T08:00:00Z", "ferritin", "684000", "ng/L"],  # = 684 ng/mL: 2016 needs > 684
    ["c1", "2024-01-01T08:00:00Z", "fibrinogen", "10.2", "umol/L"],  # 10.2 * 34 = 346.8 mg/dL <= 360
    ["c1", "2024-01-01T08:00:00Z", "platelets", "181000", "/uL"],  # = 181 10*9/L <= 181
    ["c1", "2024-01-01T08:00:00Z", "ferritin", ">20000", "pmol/L"],  # a later row at the same time wins
    ["c1", "2024-01-01T08:00:00Z", "esr", "0", "mm/h"],
]


def test_cut_offs_censored_values_and_ties(backend, engine, tmp_path):
    source = write_long(tmp_path / "c.csv", [r + [""] * (len(HEADER) - len(r)) for r in CUTOFFS])
    _, rows = _screen(backend, source, tmp_path)
    assert mismatches(engine, source, rows) == []
    (row,) = rows
    hlh = engine.explain(engine.read(source), at="2024-01-01T08:00:00Z").criterion("hlh2004")
    assert next(i for i in hlh["items"] if i["id"] == "hlh2004.tg_fibrinogen")["status"] == "met"
    assert row["ferritin_esr_status"] == "met" and row["ferritin_esr_score"] is None  # x/0 is unbounded


def test_look_back_window_and_untimed_background(backend, engine, tmp_path):
    rows = [["w", "", "sJIA", "confirmed", ""], ["w", "", "fever", "true", ""],
            ["w", "2024-01-01T00:00:00Z", "ferritin", "5000", "ng/mL"],
            ["w", "2024-01-01T00:00:00Z", "platelets", "90", "10*9/L"],
            ["w", "2024-01-03T23:59:59Z", "ast", "120", "U/L"],
            ["w", "2024-01-04T00:00:01Z", "ast", "130", "U/L"]]
    source = write_long(tmp_path / "w.csv", [r + [""] * 4 for r in rows])
    _, limited = _screen(backend, source, tmp_path, "a.parquet")
    _, unlimited = _screen(backend, source, tmp_path, "b.parquet", window=None)
    assert mismatches(engine, source, limited) == []
    assert mismatches(engine, source, unlimited, window=None) == []
    assert [r["mas2016_status"] for r in limited] == ["indeterminate", "met", "indeterminate"]  # ferritin ages out
    assert [r["mas2016_status"] for r in unlimited] == ["indeterminate", "met", "met"]


BAD_ROWS = [
    ["b", "", "age_years", "7", ""],
    ["b", "2024-01-01", "ferriton", "1", "ng/mL"],
    ["b", "2024-01-01", "ferritin", "1", "furlongs"],
    ["b", "2024-01-01", "ferritin", "1", "mm/h"],
    ["b", "2024-01-01", "ferritin", "-1", "ng/mL"],
    ["b", "2024-01-01", "ferritin", "lots", "ng/mL"],
    ["b", "2024-13-45", "ferritin", "1", "ng/mL"],
    ["b", "2024-01-01", "ferritin", "1.0000000001", "ng/mL"],
    ["b", "2024-01-01", "temperature", "60", "Cel"],
    ["b", "2024-01-01", "splenomegaly", "4", "cm", ">"],
    ["b", "2024-01-01", "hepatomegaly", "true", "", ">"],  # a comparator beside true/false is not read (as CSV)
    ["b", "2024-01-01", "hemophagocytosis", "true", "", "", "kidney-of-mars"],
    ["", "2024-01-01", "ferritin", "1", "ng/mL"],
    ["b", "2024-01-01", "ferritin", "700", "ug/L"],
    ["b", "2024-01-01", "ferritin", "22470001", "pmol/L"],  # above the plausible 10 000 000 ng/mL (x 2.247)
    ["b", "2024-01-01", "esr", "<0", "mm/h"],  # [0, 0) holds no value (semantics 14)
    ["b", "2999-01-01", "platelets", "90", "10*9/L"],  # timed in the future
]


def test_rejected_rows_are_counted_with_their_reason(backend, tmp_path):
    source = write_long(tmp_path / "bad.csv", [r + [""] * (len(HEADER) - len(r)) for r in BAD_ROWS])
    summary, rows = _screen(backend, source, tmp_path)
    assert summary.input_rows == len(BAD_ROWS) and summary.used_rows == 3  # age, hepatomegaly, ferritin 700
    reasons = " | ".join(summary.rejected)
    for fragment in ("unknown code 'ferriton'", "unknown unit 'furlongs'", "not a mass-concentration",
                     "negative value", "'lots' is not a finite number", "unparseable time '2024-13-45'",
                     "beyond what the screen reads exactly", "impossible body temperature", "meaningless",
                     "unknown site 'kidney-of-mars'", "empty patient_id", "impossible value 22470001 pmol/L for ferritin",
                     "comparator '<' 0 allows no value for esr", "time '2999-01-01' is in the future"):
        assert fragment in reasons, fragment
    assert [r["patient_id"] for r in rows] == ["b"]


def test_malformed_tables_name_the_column(backend, tmp_path):
    no_unit = tmp_path / "no_unit.csv"
    no_unit.write_text("patient_id,time,code,value\np,,ferritin,1\n")
    with pytest.raises(InputError, match="missing column 'unit'"):
        screen(no_unit, out=tmp_path / "o.parquet", engine=backend)
    extra = tmp_path / "extra.csv"
    extra.write_text("patient_id,time,code,value,unit,untis\np,,ferritin,1,ng/mL,x\n")
    with pytest.raises(InputError, match="unknown column 'untis'"):
        screen(extra, out=tmp_path / "o.parquet", engine=backend)
    typed = tmp_path / "typed.parquet"
    duckdb.sql(f"COPY (SELECT 'p' AS patient_id, NULL::VARCHAR AS time, 'ferritin' AS code, TRUE AS value, "
               f"'ng/mL' AS unit) TO '{typed}' (FORMAT parquet)")
    with pytest.raises(InputError, match="column 'value' is of type boolean"):
        screen(typed, out=tmp_path / "o.parquet", engine=backend)
    assert not (tmp_path / "o.parquet").exists()


def test_parquet_in_and_out_give_the_csv_answer(backend, examples_csv, tmp_path):
    parquet = tmp_path / "examples.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{examples_csv}', all_varchar=true)) TO '{parquet}' (FORMAT parquet)")
    _, from_csv = _screen(backend, examples_csv, tmp_path, "a.csv")
    _, from_parquet = _screen(backend, parquet, tmp_path, "b.parquet")
    assert from_csv == from_parquet


def test_flagged_patients_go_on_to_explain(backend, examples_csv, engine, tmp_path):
    summary, rows = _screen(backend, examples_csv, tmp_path, flagged=tmp_path / "flagged.csv")
    flagged = {p.id for p, _ in read_csv((tmp_path / "flagged.csv").read_text(), engine.kb)}
    hit = {r["patient_id"] for r in rows if any(v == "met" for k, v in r.items() if k.endswith("_status"))}
    assert flagged == hit and summary.flagged_patients == len(hit) > 0


def test_chosen_criteria_sets_give_the_same_columns(backend, examples_csv, tmp_path):
    _, every = _screen(backend, examples_csv, tmp_path, "all.csv")
    summary, chosen = _screen(backend, examples_csv, tmp_path, "two.csv", criteria=["mas2016", "hlh2004"])
    columns = ["patient_id", "time"] + [f"{c}_{s}" for c in ("mas2016", "hlh2004")
                                        for s in ("status", "score", "score_min", "score_max")]
    assert [list(r) for r in chosen] == [columns] * len(chosen) and len(chosen) == len(every)
    assert chosen == [{c: r[c] for c in columns} for r in every]
    assert list(summary.hits) == ["mas2016", "hlh2004"]
    for wrong, message in (([], "at least one"), (["mas2016", "mas2016"], "once"), (["mas2106"], "unknown criteria set 'mas2106'")):
        with pytest.raises(InputError, match=message):
            screen(examples_csv, out=tmp_path / "no.csv", engine=backend, criteria=wrong)
    assert not (tmp_path / "no.csv").exists()


def test_cli_screen(examples_csv, tmp_path):
    done = run_cli("screen", str(examples_csv), "--out", str(tmp_path / "r.parquet"), "--summary",
                   str(tmp_path / "s.json"), "--window", "3d")
    assert done.returncode == 0, done.stderr
    assert "screened 8 patients" in done.stdout and "\r" not in done.stderr  # no progress bar off a terminal
    assert json.loads((tmp_path / "s.json").read_text())["evaluation_rows"] == len(read_result(tmp_path / "r.parquet"))
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,time,code\np,,ferritin\n")
    done = run_cli("screen", str(bad), "--out", str(tmp_path / "x.parquet"))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "missing column 'value'" in done.stderr
    assert not (tmp_path / "x.parquet").exists()
    done = run_cli("screen", str(examples_csv), "--out", str(tmp_path / "x.parquet"), "--window", "soon")
    assert done.returncode == 2 and "--window" in done.stderr
    done = run_cli("screen", str(examples_csv), "--out", str(tmp_path / "x.csv"), "--criteria", "hlh2004,nope")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "unknown criteria set 'nope'" in done.stderr
    done = run_cli("screen", str(examples_csv), "--out", str(tmp_path / "two.csv"), "--criteria", "hlh2004,mas2016")
    assert done.returncode == 0 and (tmp_path / "two.csv").read_text().splitlines()[0] == (
        "patient_id,time," + ",".join(f"{c}_{s}" for c in ("hlh2004", "mas2016")
                                      for s in ("status", "score", "score_min", "score_max")))


def test_default_window_is_explains(engine):
    from kg.engine import DEFAULT_WINDOW
    from kg.screen import DEFAULT_WINDOW as SCREEN_WINDOW

    assert SCREEN_WINDOW == DEFAULT_WINDOW == timedelta(hours=72)
