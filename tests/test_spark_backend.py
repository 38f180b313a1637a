"""SparkBackend against DuckDBBackend: the same files, rows and SQL give the same answers and the same output files.

One Spark session for the whole run (the ``spark_backend`` fixture); skipped without pyspark or Java
unless ``MAS_KG_REQUIRE_SPARK=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from kg.errors import InputError
from kg.patient import parse_time
from kg.screen.backend import Dialect, DuckDBBackend

ROWS = 200_000
COLUMNS = [("s", "VARCHAR"), ("i", "BIGINT"), ("b", "BOOLEAN"), ("d", "DOUBLE"), ("m", "DECIMAL(38,9)")]
VALUES = [("a,b", 1, True, 1.5, Decimal("1.5")), (None, None, None, None, None),
          ("", -2, False, 1e20, Decimal("-0.000000001")), ('q"r', 3, True, 0.1, Decimal("12345678901234567890.123456789")),
          ("x", 4, False, float("nan"), Decimal(0)), ("y", 5, False, 1 / 3, Decimal("100")),
          ("z", 6, False, 123456789.0, Decimal("1e-9")), ("w", 7, True, 1e-7, Decimal("0.0000000005")),
          ("v", 8, True, -0.0, None), ("u", 9, True, float("inf"), None), ("t", 10, True, 2.5e15, None),
          ("t", 11, True, 1e16, None), ("  sp ", 12, True, 0.0001, None), ("l\nm", 13, False, 0.001, None),
          ("#", 14, False, -1.5e-300, None), ("é\r", 15, False, 9.999e-5, None), ("NULL", 16, True, 4.0, None)]


@pytest.fixture(scope="module")
def duck():
    with DuckDBBackend() as db:
        yield db


@pytest.fixture(scope="module")
def both(spark_backend, duck):
    """The two engines with the same small table ``r`` (COLUMNS, VALUES)."""
    for backend in (spark_backend, duck):
        backend.register_rows("r", COLUMNS, VALUES)
    return spark_backend, duck


def same(both, query) -> list[tuple]:
    """Run ``query`` (SQL, or a function of a dialect giving SQL) on both engines; they must agree."""
    spark, duck = both
    spell = query if callable(query) else (lambda d: query)
    got, want = spark.fetch(spell(spark.dialect)), duck.fetch(spell(duck.dialect))
    assert got == want, spell(spark.dialect)
    return got


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "cohort.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("ID,code,value\n")
        out.writelines(f'{i},"c,{i % 7}",{i * 0.5}\n' for i in range(ROWS))
    return path


# -- reading ---------------------------------------------------------------------------------------


def test_csv_is_read_as_duckdb_reads_it(both, tmp_path):
    path = tmp_path / "t.csv"
    # (a line break inside quotes is kept as it is, except that Spark reads "\r\n" there as "\n")
    path.write_bytes('\ufeffPatient,Code,Note\r\n1,,x\r\n"",  ,"a,b"\r\n3,"q""r",\r\n4,"two\nlines",\u00e9\r\n'.encode())
    spark, duck = both
    assert spark.register_file("t", path) == duck.register_file("t", path) == ["patient", "code", "note"]
    assert spark.column_types("t") == duck.column_types("t")
    assert same(both, "SELECT patient, code, note, row_no FROM t ORDER BY row_no") == [
        ("1", None, "x", 0), (None, "  ", "a,b", 1), ("3", 'q"r', None, 2), ("4", "two\nlines", "é", 3)]


@pytest.mark.parametrize("text, message", [("", "empty file"), ("a,b,a\n1,2,3\n", "column 'a' is named twice"),
                                           (b"caf\xe9,b\n".decode("latin-1"), "not UTF-8")])
def test_csv_headers_are_refused_alike(both, tmp_path, text, message):
    path = tmp_path / "h.csv"
    path.write_bytes(text.encode("latin-1"))
    for backend in both:
        with pytest.raises(InputError, match=message):
            backend.register_file("h", path)


def test_row_no_is_file_order_of_a_large_csv(spark_backend, big_csv):
    assert spark_backend.register_file("big", big_csv) == ["id", "code", "value"]
    assert spark_backend.fetch("SELECT count(*), count(DISTINCT row_no), max(row_no), "
                               "count(*) FILTER (WHERE CAST(id AS BIGINT) <> row_no) FROM big") == [(ROWS, ROWS, ROWS - 1, 0)]
    # the latest row wins a tie, as the screen asks: twice, so the numbering is the same in every query
    for _ in range(2):
        assert spark_backend.fetch("SELECT max_by(id, row_no), min_by(id, row_no) FROM big WHERE code = 'c,3'") == [
            (str(max(i for i in range(ROWS) if i % 7 == 3)), "3")]


def test_row_no_when_a_csv_is_split_over_many_tasks(spark_backend, big_csv):
    from kg.screen.spark import SparkBackend

    split = SparkBackend(multiline_csv=False)  # shares the session this process runs already
    assert split.spark is spark_backend.spark
    conf = spark_backend.spark.conf
    before = conf.get("spark.sql.files.maxPartitionBytes")
    conf.set("spark.sql.files.maxPartitionBytes", str(256 * 1024))
    try:
        assert spark_backend.spark.read.csv(str(big_csv)).rdd.getNumPartitions() > 10
        split.register_file("split", big_csv)
        assert split.fetch("SELECT count(*), count(*) FILTER (WHERE CAST(id AS BIGINT) <> row_no) FROM split") == [(ROWS, 0)]
    finally:
        conf.set("spark.sql.files.maxPartitionBytes", before)
        split.close()
    assert spark_backend.fetch("SELECT 1") == [(1,)]  # closing a backend on a session it did not start keeps it
    with SparkBackend(session=spark_backend.spark) as given:
        assert given.fetch("SELECT 2") == [(2,)]
    assert spark_backend.fetch("SELECT 3") == [(3,)]


def test_parquet_file_and_directory(both, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    spark, duck = both
    table = pa.table({"Id": pa.array(range(1000), pa.int64()), "v": [f"v{i}" for i in range(1000)]})
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=100)
    assert spark.register_file("p", tmp_path / "one.parquet") == duck.register_file("p", tmp_path / "one.parquet") == ["id", "v"]
    assert spark.column_types("p") == duck.column_types("p") == {"id": "integer", "v": "string", "row_no": "integer"}
    assert same(both, "SELECT * FROM p ORDER BY row_no")[:2] == [(0, "v0", 0), (1, "v1", 1)]
    parts = tmp_path / "parts"
    parts.mkdir()
    for n in range(3):  # numbered across the parts in file-name order (DuckDB restarts at 0 in each part)
        pq.write_table(table.slice(n * 300, 300), parts / f"part-{n}.parquet", row_group_size=50)
    spark.register_file("pp", parts)
    assert spark.fetch("SELECT count(*), count(*) FILTER (WHERE id <> row_no) FROM pp") == [(900, 0)]


def test_register_rows_and_column_types(both):
    spark, duck = both
    assert spark.column_types("r") == duck.column_types("r") == {
        "s": "string", "i": "integer", "b": "boolean", "d": "double", "m": "decimal"}
    rows = spark.fetch("SELECT * FROM r ORDER BY i NULLS FIRST")
    want = duck.fetch("SELECT * FROM r ORDER BY i NULLS FIRST")
    assert [r[:3] + r[4:] for r in rows] == [r[:3] + r[4:] for r in want]
    assert [repr(r[3]) for r in rows] == [repr(r[3]) for r in want]  # nan == nan is False
    spark.register_rows("empty", [("x", "BIGINT")], [])
    assert spark.fetch("SELECT count(*) FROM empty") == [(0,)]


def test_create_view_and_fetch(both):
    for backend in both:
        backend.create_view("v", "SELECT i, m * 2 AS m2 FROM (SELECT i, m FROM r) AS x WHERE i > 10")
    assert same(both, "SELECT i, m2 FROM v ORDER BY i") == [(i, None) for i in range(11, 17)]
    spark, duck = both
    query = "SELECT CAST('2024-03-02 08:00:00' AS TIMESTAMP) AS t"
    assert spark.fetch(query)[0][0] == datetime(2024, 3, 2, 8, tzinfo=timezone.utc)


# -- writing ---------------------------------------------------------------------------------------


def test_csv_written_as_duckdb_writes_it(both, tmp_path):
    spark, duck = both
    query = ("SELECT s, i, b, d, m, m * CAST(3 AS DECIMAL(15,0)) AS m3, CAST(i AS DECIMAL(15,0)) AS whole, "
             "CAST(d AS FLOAT) AS f, 1.5 AS lit, s AS same FROM r ORDER BY i NULLS FIRST")
    assert spark.write(query, tmp_path / "spark.csv") == duck.write(query, tmp_path / "duck.csv") == len(VALUES)
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "duck.csv").read_bytes()
    empty = "SELECT s, d FROM r WHERE false"
    assert spark.write(empty, tmp_path / "e1.csv") == duck.write(empty, tmp_path / "e2.csv") == 0
    assert (tmp_path / "e1.csv").read_text() == (tmp_path / "e2.csv").read_text() == "s,d\n"


def test_doubles_written_as_python_repr(spark_backend, tmp_path):
    import random
    import struct

    rng = random.Random(5)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 20) for _ in range(3000)]
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(3000)]
    values = [v for v in values if v == v and abs(v) < 1e16]  # above 1e16 JDK 17 may pick a neighbour digit
    values += [0.0, -0.0, 5e-324, 1e-5, 1e-4, 123456789012345.6, 9999999999999998.0, 1e15]
    spark_backend.register_rows("doubles", [("n", "BIGINT"), ("d", "DOUBLE")], list(enumerate(values)))
    spark_backend.write("SELECT d FROM doubles ORDER BY n", tmp_path / "d.csv")
    assert (tmp_path / "d.csv").read_text().split("\n") == ["d", *map(repr, values), ""]


def test_parquet_types_as_duckdb_writes_them(both, tmp_path):
    import pyarrow.parquet as pq

    spark, duck = both
    query = "SELECT s, i, b, d, m, i > 3 AS flag, 1 AS one, count(*) OVER () AS n FROM r ORDER BY i NULLS FIRST"
    assert spark.write(query, tmp_path / "s.parquet") == duck.write(query, tmp_path / "d.parquet") == len(VALUES)
    got, want = pq.read_table(tmp_path / "s.parquet"), pq.read_table(tmp_path / "d.parquet")
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in want.schema]
    assert got.drop_columns(["d"]).to_pylist() == want.drop_columns(["d"]).to_pylist()


def test_write_is_atomic_and_a_single_file(spark_backend, tmp_path):
    import pyarrow.parquet as pq

    target = tmp_path / "out.csv"
    target.write_text("old\n")
    mask = os.umask(0o022)
    os.umask(mask)
    assert spark_backend.write("SELECT i FROM r WHERE i < 3 ORDER BY i", target) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert target.read_text() == "i\n-2\n1\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(Exception):
        spark_backend.write("SELECT no_such_column FROM r", target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"] and target.read_text() == "i\n-2\n1\n"
    # six tasks write six parts, joined in task order; a sorted result stays sorted
    assert spark_backend.write("SELECT id FROM range(0, 50000, 1, 6)", tmp_path / "many.parquet") == 50000
    assert pq.read_table(tmp_path / "many.parquet").column("id").to_pylist() == list(range(50000))
    assert spark_backend.write("SELECT id FROM range(0, 50000, 1, 6) ORDER BY id DESC", tmp_path / "desc.csv") == 50000
    assert (tmp_path / "desc.csv").read_text() == "id\n" + "".join(f"{i}\n" for i in reversed(range(50000)))
    for name in ("many.parquet", "desc.csv"):
        (tmp_path / name).unlink()
    folder = tmp_path / "parts.parquet"
    assert spark_backend.write("SELECT i FROM r", folder, single_file=False) == len(VALUES)
    assert folder.is_dir() and any(p.name.startswith("part-") for p in folder.iterdir())


# -- errors and status -----------------------------------------------------------------------------


def test_input_errors(spark_backend, tmp_path):
    with pytest.raises(InputError) as missing:
        spark_backend.register_file("x", tmp_path / "missing.csv")
    assert missing.value.problem == "no such file" and missing.value.where == str(tmp_path / "missing.csv")
    (tmp_path / "data.txt").write_text("a\n1\n")
    with pytest.raises(InputError, match="must end in .csv or .parquet"):
        spark_backend.register_file("x", tmp_path / "data.txt")
    for name, text in (("bad.parquet", "not parquet"), ("ragged.csv", "a,b\n1,2\n3,4,5\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError) as bad:
            spark_backend.register_file("x", tmp_path / name)
        message = str(bad.value)
        assert message.startswith(f"{tmp_path / name}: cannot read as ") and "\n" not in message, message
        assert "\tat " not in message and len(message) < 400 + len(str(tmp_path)), message


def test_progress(spark_backend):
    assert spark_backend.progress() is None
    seen: list[float] = []
    job = threading.Thread(target=spark_backend.fetch,
                           args=("SELECT sum(id % 7) FROM range(0, 600000000, 1, 8)",))
    job.start()
    while job.is_alive():
        value = spark_backend.progress()
        if value is not None:
            seen.append(value)
        job.join(0.02)
    assert seen and all(0 <= v <= 1 for v in seen)


@pytest.mark.slow
def test_startup_prints_nothing_to_stdout(spark_backend):
    code = ("from kg.screen.spark import SparkBackend\n"
            "b = SparkBackend()\nassert b.fetch('SELECT 1') == [(1,)]\nb.close()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert not [line for line in done.stderr.splitlines() if not line.startswith("Picked up ")], done.stderr


# -- the dialect -----------------------------------------------------------------------------------

TIMES = ["2024-03-02", "2024-03-02T08:00", "2024-03-02 08:00", "2024-03-02T08:00:00", "2024-03-02T08:00:00Z",
         "2024-03-02T08:00:00z", "2024-03-02T08:00:00.5Z", "2024-03-02T08:00:00.123456+02:00",
         "2024-03-02T08:00:00.000001-05:30", "2024-03-02T08:00+01:00", "2024-03-02 08:00:00.1234+00:30",
         "2024-03-02T08:00:00+14:00", "2024-03-02T08:00:00+23:59", "2024-03-02T08:00:00-00:00",
         "2024-02-29T23:59:59Z", "1969-12-31T23:59:59.999999Z", "1900-01-01T00:00:00Z", "0001-01-01",
         "9999-12-31T23:59:59.999999Z", "2024-03-02T08:00:00+05:60",
         # not a time: NULL in both engines, and Python refuses them too
         "2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-01-00", "2024-01-32", "2024-03-02T24:00:00",
         "2024-03-02T23:60:00", "2024-03-02T23:59:60", "2024-03-02T25:00", "2024-03-02T08:00:00+24:00",
         "2024-03-02T08:00:00+99:99", "0000-01-01",
         # a bare date with an offset: NULL in both engines (Python reads "+01:00" as the time 01:00)
         "2024-03-02Z", "2024-03-02+01:00"]


def python_us(text: str) -> int | None:
    try:
        moment = parse_time(text)
    except ValueError:
        return None
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // (moment.resolution)


def test_epoch_us(both):
    spark, duck = both
    rows = [(n, t) for n, t in enumerate(TIMES)]
    for backend in both:
        backend.register_rows("times", [("n", "BIGINT"), ("t", "VARCHAR")], rows)
    got = same(both, lambda d: f"SELECT n, {d.epoch_us('t')} FROM times ORDER BY n")
    for (n, value), text in zip(got, TIMES):
        if text.endswith(("2024-03-02Z", "2024-03-02+01:00")):
            assert value is None
        else:
            assert value == python_us(text), text
    assert sum(v is None for _, v in got) == 15


def test_iso(both):
    moments = [0, 1, -1, 999999, 1_000_000, 1709366400000000, 1709366400500000, 1709366400000001,
               -62135596800000000, 253402300799999999, -2208988800000000, 951782400000000]
    rows = [(n, us) for n, us in enumerate(moments)]
    for backend in both:
        backend.register_rows("moments", [("n", "BIGINT"), ("us", "BIGINT")], rows)
    got = same(both, lambda d: f"SELECT n, {d.iso('us')}, {d.epoch_us(d.iso('us'))} FROM moments ORDER BY n")
    for (_, text, back), us in zip(got, moments):
        assert back == us and python_us(text) == us, text


def test_regular_expressions(both):
    texts = ["abc", "abc\n", "ab", "", "x-123", "X-12", "aab", "héllo", "line\nbreak", None]
    rows = [(n, t) for n, t in enumerate(texts)]
    for backend in both:
        backend.register_rows("texts", [("n", "BIGINT"), ("t", "VARCHAR")], rows)
    patterns = ["abc", "a|ab", "[a-z]+", "(x|X)-[0-9]{2,3}", ".*", "a*b", "h.llo", "[^\n]*"]
    for pattern in patterns:
        same(both, lambda d: f"SELECT n, {d.full_match('t', pattern)} FROM texts ORDER BY n")
    for pattern, group in (("([a-z])([a-z])", 2), ("(x|X)-([0-9]+)", 2), ("q(z)?", 1), ("(b)", 0), ("^(a+)", 1)):
        same(both, lambda d: f"SELECT n, {d.extract('t', pattern, group)} FROM texts ORDER BY n")


def test_struct_and_last_ignore_nulls(both):
    rows = [("p1", 1, 5, "a"), ("p1", 2, None, None), ("p1", 3, 7, "c"), ("p1", 4, None, "d"), ("p2", 1, None, None),
            ("p2", 2, 3, "x")]
    for backend in both:
        backend.register_rows("obs", [("p", "VARCHAR"), ("t", "BIGINT"), ("v", "BIGINT"), ("w", "VARCHAR")], rows)
    frame = "OVER (PARTITION BY p ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"

    def query(d: Dialect) -> str:
        latest = d.last_ignore_nulls("CASE WHEN v IS NOT NULL THEN " + d.struct({"v": "v", "w": "w"}) + " END")
        return f"SELECT p, t, {latest} {frame}, {d.last_ignore_nulls('w')} {frame} FROM obs ORDER BY p, t"

    got = same(both, query)
    assert got[3] == ("p1", 4, {"v": 7, "w": "c"}, "d") and got[4] == ("p2", 1, None, None)


def test_decimals(both):
    texts = ["1.5", " 1.5 ", "+1.5", ".5", "5.", "-0", "NaN", "inf", "1,5", "", "1e3", "1E-10", "0.0000000005",
             "-0.0000000015", "123456789012", "999999999999.9999999995", "1_000", "\u0661\u0662", "\uff11\uff12",
             "\t7\n", "\x1c7", "0e99999", "1e20", "1.e2", "abc", None]
    for backend in both:
        backend.register_rows("numbers", [("n", "BIGINT"), ("t", "VARCHAR")], list(enumerate(texts)))
    got = same(both, lambda d: f"SELECT n, {d.try_decimal('t')}, {d.try_decimal('t', 15, 0)} FROM numbers ORDER BY n")
    assert got[0][1] == Decimal("1.5") and got[16][1] is None and got[17][1] is None
    # exact: DECIMAL(21,9) * DECIMAL(15,0) keeps every digit
    x = "TRY_CAST('123456789012.123456789' AS DECIMAL(21,9))"
    assert same(both, lambda d: f"SELECT {x} * CAST('999999999999999' AS DECIMAL(15,0)), {x} * {d.decimal('2.000000001')}, "
                                f"{d.decimal('0.1')} * 3, TRY_CAST('x' AS DECIMAL(21,9))") == [
        (Decimal("123456789012123333332210987.876543211"), Decimal("246913578147.703702590123456789"), Decimal("0.3"),
         None)]


def test_sql_both_engines_spell_the_same(both):
    same(both, "SELECT max_by(s, i), min_by(s, i), count(*) FILTER (WHERE b), sum(i) FILTER (WHERE i > 3) FROM r")
    same(both, "SELECT i, CASE WHEN i IN (1, 3) THEN 'odd' WHEN i IS NULL THEN 'none' ELSE 'other' END, "
               "COALESCE(s, 'null'), i % 4, -i % 4, s || '!', sum(i) OVER (ORDER BY i NULLS LAST ROWS BETWEEN "
               "UNBOUNDED PRECEDING AND CURRENT ROW) FROM r ORDER BY i NULLS FIRST")
    # ORDER BY without NULLS FIRST/LAST differs: DuckDB puts NULL last, Spark first (ascending)
    spark, duck = both
    query = "SELECT i FROM r WHERE i IS NULL OR i < 2 ORDER BY i"
    assert spark.fetch(query) == [(None,), (-2,), (1,)] and duck.fetch(query) == [(-2,), (1,), (None,)]
    same(both, lambda d: f"SELECT i, {d.struct({'a': 'i', 'b': 's'})} FROM r WHERE i < 3 ORDER BY i")


def test_base_dialect_is_duckdb():
    assert Dialect().name == "duckdb"
