"""OMOP CDM v5.4 tables read as the long format (kg.screen.omop), on DuckDB and, when available, Spark."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from kg.errors import InputError
from kg.fhir import _age_years
from kg.screen.backend import DuckDBBackend
from kg.screen.omop import (OMOP_TABLES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, check_omop_columns, find_omop_tables,
                            looks_like_omop, omop_long_query, prepare_omop_views, register_omop)

ROOT = Path(__file__).resolve().parent.parent
OMOP = ROOT / "examples" / "omop"
LONG = ("patient_id", "time", "code", "value", "unit", "comparator", "site", "gene", "agent")


def expected_rows() -> Counter:
    with open(OMOP / "long.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == LONG
        return Counter(tuple(row[c] or None for c in LONG) for row in reader)


def long_rows(backend, views=None) -> list[tuple]:
    return backend.fetch(f"SELECT * FROM ({omop_long_query(backend.dialect, views)}) ORDER BY row_no")


def as_multiset(rows: list[tuple]) -> Counter:
    return Counter(tuple(row[:-1]) for row in rows)


@pytest.fixture
def db():
    with DuckDBBackend() as backend:
        yield backend


@pytest.fixture(params=["duckdb", "spark"])
def engine(request):
    """Each engine in turn (Spark: the session fixture of conftest.py, skipped when it cannot start)."""
    if request.param == "spark":
        try:
            yield request.getfixturevalue("spark_backend")
        except pytest.FixtureLookupError:
            pytest.skip("no spark_backend fixture")
        return
    with DuckDBBackend() as backend:
        yield backend


def test_example_gives_the_hand_written_long_format(db):
    for table in OMOP_TABLES:
        db.register_file(table, OMOP / f"{table}.csv")
    check_omop_columns(db, list(OMOP_TABLES))
    rows = long_rows(db)
    assert as_multiset(rows) == expected_rows()
    assert [row[-1] for row in rows] == list(range(len(rows)))
    types = db.fetch(f"DESCRIBE ({omop_long_query(db.dialect)})")
    assert [(name, kind) for name, kind, *_ in types] == [(c, "VARCHAR") for c in LONG] + [("row_no", "BIGINT")]
    # persons first (age, sex), then measurements by measurement_id, then conditions
    assert [row[2] for row in rows[:2]] == ["age_years", "sex"] and rows[8][2] == "LOINC:2276-4"
    assert rows[-1][2] == "SCTID:55464009"


def test_typed_parquet_tables_give_the_same_rows(db, tmp_path):
    """Parquet with BIGINT ids, DATE, TIMESTAMP and DOUBLE values (and no optional text columns)."""
    casts = {"person": "CAST(person_id AS BIGINT) AS person_id, CAST(gender_concept_id AS INTEGER) AS gender_concept_id, "
                       "CAST(year_of_birth AS INTEGER) AS year_of_birth, CAST(month_of_birth AS INTEGER) AS month_of_birth, "
                       "CAST(day_of_birth AS INTEGER) AS day_of_birth, CAST(birth_datetime AS TIMESTAMP) AS birth_datetime",
             "measurement": "CAST(measurement_id AS BIGINT) AS measurement_id, CAST(person_id AS BIGINT) AS person_id, "
                            "CAST(measurement_concept_id AS INTEGER) AS measurement_concept_id, "
                            "CAST(measurement_date AS DATE) AS measurement_date, "
                            "CAST(measurement_datetime AS TIMESTAMP) AS measurement_datetime, "
                            "CAST(operator_concept_id AS INTEGER) AS operator_concept_id, "
                            "CAST(value_as_number AS DOUBLE) AS value_as_number, "
                            "CAST(unit_concept_id AS INTEGER) AS unit_concept_id, measurement_source_value, unit_source_value",
             "condition_occurrence": "CAST(condition_occurrence_id AS BIGINT) AS condition_occurrence_id, "
                                     "CAST(person_id AS BIGINT) AS person_id, "
                                     "CAST(condition_concept_id AS INTEGER) AS condition_concept_id, "
                                     "CAST(condition_start_date AS DATE) AS condition_start_date, "
                                     "CAST(condition_start_datetime AS TIMESTAMP) AS condition_start_datetime",
             "concept": "CAST(concept_id AS INTEGER) AS concept_id, vocabulary_id, concept_code"}
    for table, select in casts.items():
        duckdb.execute(f"COPY (SELECT {select} FROM read_csv('{OMOP / table}.csv', all_varchar = true)) "
                       f"TO '{tmp_path / table.upper()}.parquet' (FORMAT parquet)")
    views = register_omop(db, tmp_path)
    rows = as_multiset(long_rows(db, views))
    # without condition_source_value every condition still has its SNOMED concept
    assert rows == expected_rows()


def test_find_tables_case_insensitive_and_missing_or_double(tmp_path):
    for table in OMOP_TABLES:
        shutil.copy(OMOP / f"{table}.csv", tmp_path / f"{table.upper()}.csv")
    assert {t: p.name for t, p in find_omop_tables(tmp_path).items()}["concept"] == "CONCEPT.csv"
    assert looks_like_omop(tmp_path) and not looks_like_omop(OMOP / "long.csv")
    (tmp_path / "person.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="person is given twice"):
        find_omop_tables(tmp_path)
    (tmp_path / "person.parquet").unlink()
    (tmp_path / "CONCEPT.csv").unlink()
    with pytest.raises(InputError, match="no OMOP concept table") as error:
        find_omop_tables(tmp_path)
    assert error.value.where == str(tmp_path)


def test_missing_column_is_named(db, tmp_path):
    for table in OMOP_TABLES:
        shutil.copy(OMOP / f"{table}.csv", tmp_path / f"{table}.csv")
    text = (tmp_path / "measurement.csv").read_text().replace("value_as_number", "value_as_text")
    (tmp_path / "measurement.csv").write_text(text)
    with pytest.raises(InputError, match="OMOP table measurement has no column 'value_as_number'") as error:
        register_omop(db, tmp_path)
    assert error.value.where.endswith("measurement.csv")


@pytest.mark.parametrize("table, column, sql_type, kind", [
    ("measurement", "value_as_number", "BOOLEAN", "boolean"),
    ("person", "person_id", "DOUBLE", "double"),
    ("measurement", "measurement_date", "BIGINT", "integer"),
    ("concept", "vocabulary_id", "BIGINT", "integer"),
])
def test_wrong_type_is_named(db, table, column, sql_type, kind):
    for name in OMOP_TABLES:
        columns = REQUIRED_COLUMNS[name] + OPTIONAL_COLUMNS[name]
        db.register_rows(name, [(c, sql_type if (name, c) == (table, column) else "VARCHAR") for c in columns], [])
    with pytest.raises(InputError, match=f"OMOP table {table}: column '{column}' is {kind}, expected"):
        check_omop_columns(db, {name: name for name in OMOP_TABLES})


def register(db, person=(), measurement=(), condition=(), concept=(), *, optional=True):
    """Tables of text columns (required plus, if ``optional``, optional ones) from tuples in that order."""
    data = {"person": person, "measurement": measurement, "condition_occurrence": condition, "concept": concept}
    for table, rows in data.items():
        columns = REQUIRED_COLUMNS[table] + (OPTIONAL_COLUMNS[table] if optional else ())
        db.register_rows(table, [(c, "VARCHAR") for c in columns],
                         [tuple(row) + (None,) * (len(columns) - len(row)) for row in rows])
    return prepare_omop_views(db, {table: table for table in OMOP_TABLES})


def test_values_times_comparators_and_codes(engine):
    db = engine
    loinc, ucum = ("7", "LOINC", "2276-4"), ("8", "UCUM", "ng/mL")
    twice = [("9", "LOINC", "777-3"), ("9", "SNOMED", "1234")]  # an ambiguous concept id is unknown
    measurements = [
        # id, person, concept, date, value, unit, datetime, operator, source, unit source
        ("1", "p", "7", "2024-05-01", "0012.500", "8", "2024-05-01 08:00:00.250", "0"),
        ("2", "p", "0", "2024-05-01", "1e3", "0", "2024-05-01T10:00:00+02:00", "4171754", "ferritin", "µg/L"),
        ("3", "p", "0", "2024-05-01", "pos", "8", "2024-05-01T10:00:00+0530", "99", "2276-4"),
        ("4", "p", "5", "2024-05-01", None, None, "2024-05-01 23:59:59+00", None, None),
        ("5", "p", "9", "yesterday", " ", None, None, "4.0", "LOCAL-1"),
        ("6", "p", "7", "2024-05-01", "-0.000000000001", "8", "2024-05-01T08:00:00Z", "4172704"),
        ("7", "p", "7", "2024-05-01", "0.0000001"), ("8", "p", "7", "2024-05-01", "-3.50"),
        ("9", "p", "7", "2024-05-01", "1e20"), ("10", "p", "7", "2024-05-01", "123456789012345.6"),
    ]
    views = register(db, measurement=measurements, concept=[loinc, ucum] + twice)
    rows = [row[1:6] for row in long_rows(db, views)]
    assert rows == [
        ("2024-05-01T08:00:00Z", "LOINC:2276-4", "12.5", "ng/mL", None),
        ("2024-05-01T10:00:00+02:00", "ferritin", "1000", "µg/L", "<="),
        ("2024-05-01T10:00:00+05:30", "LOINC:2276-4", "pos", "ng/mL", "operator_concept_id 99"),
        ("2024-05-01T23:59:59Z", "OMOP:5", None, None, None),
        ("yesterday", "LOCAL-1", None, None, "operator_concept_id 4.0"),
        ("2024-05-01T08:00:00Z", "LOINC:2276-4", "0", "ng/mL", ">"),
        ("2024-05-01", "LOINC:2276-4", "0.0000001", None, None), ("2024-05-01", "LOINC:2276-4", "-3.5", None, None),
        ("2024-05-01", "LOINC:2276-4", "1e20", None, None),  # beyond what the screen reads: passed on, rejected there
        ("2024-05-01", "LOINC:2276-4", "123456789012345.6", None, None),
    ]


def test_conditions_and_person_rules(engine):
    db = engine
    persons = [  # person, gender, year, month, day, birth_datetime
        ("1", "8507", "2017", "3", "15"), ("2", "8532", "2024"), ("3", "0", "2024", "3"), ("4", None, "2030"),
        ("5", "8551", "2017", "2", "30"), ("6", "8532", "2000", "2", "29"), ("7", "8507", None),
        ("8", "8532", "1999", "9", "9", "2001-01-02 03:04:05"), ("9", "8532", "2010")]
    measurements = [(str(i), str(i), "0", "2024-03-10", "1", "0") for i in (1, 2, 3, 4, 5, 7)]
    measurements += [("9", "6", "0", "2023-02-28", "1", "0"), ("10", "8", "0", "2024-01-01", "1", "0")]
    conditions = [("1", "1", "40", "2022-11-02", None, "M08.2"), ("2", "9", "0", "2020-06-30", "2020-07-02 01:00:00"),
                  ("3", "2", "41", "2023-01-01")]
    concepts = [("40", "SNOMED", "201796004"), ("41", "ICD10CM", "M06.1")]
    views = register(db, persons, measurements, conditions, concepts)
    rows = long_rows(db, views)
    people = {(row[0], row[2]): row[3] for row in rows if row[2] in ("age_years", "sex")}
    assert people == {
        ("1", "age_years"): "6.986338", ("1", "sex"): "male",
        ("2", "age_years"): "0.188524", ("2", "sex"): "female",  # born 2024 (1 July after 10 March: 1 January)
        ("3", "age_years"): "0.024657", ("3", "sex"): "unknown",  # born March 2024 (15th after the 10th: 1st)
        ("4", "age_years"): "birth date 2030-07-01 is after the latest record 2024-03-10", ("4", "sex"): "unknown",
        ("5", "age_years"): "birth date 2017-02-30 is not a date", ("5", "sex"): "unknown",
        ("6", "age_years"): "23.000000", ("6", "sex"): "female",
        ("7", "sex"): "male",  # no birth year: no age
        ("8", "age_years"): "22.997260", ("8", "sex"): "female",  # birth_datetime wins over the parts
        ("9", "age_years"): "10.002739", ("9", "sex"): "female",  # no measurement: latest condition; 1 July 2010
    }
    assert Counter((row[0], row[1], row[2], row[3]) for row in rows if row[3] == "confirmed") == Counter([
        ("1", "2022-11-02", "SCTID:201796004", "confirmed"), ("9", "2020-07-02T01:00:00Z", "OMOP:0", "confirmed"),
        ("2", "2023-01-01", "OMOP:41", "confirmed")])


AGES = [(date(2017, 3, 15), date(2024, 3, 10)), (date(2016, 2, 29), date(2023, 2, 28)),
        (date(2016, 2, 29), date(2024, 2, 28)), (date(2016, 2, 29), date(2024, 2, 29)),
        (date(2023, 12, 31), date(2024, 1, 1)), (date(1950, 1, 1), date(2024, 12, 31)),
        (date(2024, 1, 20), date(2024, 2, 16)), (date(2024, 1, 20), date(2024, 2, 17)),
        (date(2020, 7, 1), date(2024, 7, 1)), (date(1999, 10, 31), date(2024, 11, 30))]


def test_age_is_the_fhir_readers_age(engine):
    persons = [(str(i), "8532", str(b.year), str(b.month), str(b.day)) for i, (b, _) in enumerate(AGES)]
    measurements = [(str(i), str(i), "0", w.isoformat(), "1", "0") for i, (_, w) in enumerate(AGES)]
    ages = {row[0]: row[3] for row in long_rows(engine, register(engine, persons, measurements))
            if row[2] == "age_years"}
    assert ages == {str(i): str(_age_years(born, when)) for i, (born, when) in enumerate(AGES)}


def test_missing_optional_columns_are_null(engine):
    db = engine
    views = register(db, [("1", "8532", "2017")], [("1", "1", "0", "2024-05-01", "2", "0")], optional=False)
    assert views["measurement"] == "measurement_cdm"
    assert [row[1:4] for row in long_rows(db, views)] == [
        (None, "age_years", "6.833333"), (None, "sex", "female"), ("2024-05-01", "OMOP:0", "2")]


def test_screen_of_omop_equals_screen_of_its_long_format(tmp_path):
    screen = pytest.importorskip("kg.screen").screen
    omop = screen(OMOP, out=tmp_path / "omop.parquet")
    long = screen(OMOP / "long.csv", out=tmp_path / "long.parquet")
    rows = [duckdb.sql(f"SELECT * FROM '{tmp_path / name}' ORDER BY ALL").fetchall()
            for name in ("omop.parquet", "long.parquet")]
    assert rows[0] == rows[1] and len(rows[0]) == 5
    assert (omop.patients, omop.input_rows, omop.used_rows, omop.rejected, omop.patients_hit) == \
        (long.patients, long.input_rows, long.used_rows, long.rejected, long.patients_hit)
    assert omop.patients_hit["mas2016"] == 1 and omop.rejected["unknown code 'SCTID:186668002'"] == 1


def test_spark_gives_the_same_rows(db, request):
    try:
        spark = request.getfixturevalue("spark_backend")
    except pytest.FixtureLookupError:
        pytest.skip("no spark_backend fixture")
    duck = long_rows(db, register_omop(db, OMOP))
    distributed = spark.fetch(f"SELECT * FROM ({omop_long_query(spark.dialect, register_omop(spark, OMOP))}) "
                              "ORDER BY row_no")
    assert [tuple(row) for row in distributed] == duck
