"""Table engines the screen runs on: one interface, an embedded DuckDB by default.

A backend registers input files and small dictionary tables as views, runs
SQL written by :mod:`kg.screen.compiler` in its :class:`Dialect`, and writes a
query's rows to CSV or Parquet atomically.  :mod:`kg.screen.spark` provides the
same interface on Apache Spark; ``tests/test_screen.py`` runs one suite on both.

>>> with DuckDBBackend() as db:
...     db.register_rows("t", [("x", "BIGINT")], [(1,), (2,)])
...     db.fetch("SELECT sum(x) FROM t")
[(3,)]
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError

__all__ = ["Backend", "Dialect", "DuckDBBackend", "table_format", "csv_header", "SQL_TYPES"]

# A number as both engines' casts read it: ASCII white space (raw characters: no backslashes), sign,
# digits with an optional point, an exponent of at most four digits.
_NUMBER = "[ \t\n\x0b\x0c\r]*[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,4})?[ \t\n\x0b\x0c\r]*"

#: Column types the screen uses, as written in both dialects.
SQL_TYPES = ("VARCHAR", "BIGINT", "BOOLEAN", "DOUBLE", "DECIMAL(38,9)", "DECIMAL(18,0)")


def table_format(path: str | Path) -> str:
    """``csv`` or ``parquet``, from a file's extension (a directory of Parquet parts is ``parquet``).

    >>> table_format("out.parquet"), table_format("cohort.CSV")
    ('parquet', 'csv')
    """
    name = str(path).lower().rstrip("/")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")) or Path(path).is_dir():
        return "parquet"
    raise InputError("the file name must end in .csv or .parquet", where=str(path))


def csv_header(path: Path) -> list[str]:
    """The column names of a long CSV file's first line (kg.csvinput's dialect); InputError for an empty file,
    a header that is not UTF-8 or a column named twice."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 20)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start} of the header)", where=str(path)) from None
    names = next(csv.reader([text.rstrip("\r\n")]), []) if text.strip() else []
    if not names:
        raise InputError("empty file: no header line", where=str(path))
    seen: set[str] = set()
    for name in names:
        if name.strip().lower() in seen:
            raise InputError(f"column {name.strip()!r} is named twice", where=str(path))
        seen.add(name.strip().lower())
    return names


def _input_error_text(error: Exception) -> str:
    """One line for an engine's complaint about the input: the line and widths of a bad CSV row, or its first line."""
    text = str(error)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    widths = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if line and widths:
        return f"line {line.group(1)}: {widths.group(2)} fields where the header has {widths.group(1)}"
    if "unicode" in text.lower() or "utf-8" in text.lower() or "utf8" in text.lower():
        return "not UTF-8 text" + (f" (line {line.group(1)})" if line else "")
    return text.strip().splitlines()[0].removeprefix("Invalid Input Error: ") if text.strip() else type(error).__name__


class Dialect:
    """The SQL the two engines spell differently (DuckDB here; Spark overrides)."""

    name = "duckdb"
    text = "VARCHAR"  # the string type in CAST

    def struct(self, fields: dict[str, str]) -> str:
        return "struct_pack(" + ", ".join(f"{name} := {expr}" for name, expr in fields.items()) + ")"

    def last_ignore_nulls(self, expr: str) -> str:
        return f"last_value({expr} IGNORE NULLS)"

    def full_match(self, expr: str, pattern: str) -> str:
        """``expr`` matches the regular expression ``pattern`` entirely (no backslashes in patterns)."""
        return f"regexp_full_match({expr}, '{pattern}')"

    def extract(self, expr: str, pattern: str, group: int) -> str:
        return f"regexp_extract({expr}, '{pattern}', {group})"

    def epoch_us(self, text: str) -> str:
        """Microseconds since 1970 (UTC) of an ISO 8601 text already checked by a pattern.

        NULL where :func:`kg.patient.parse_time` fails or differs (see :meth:`_valid_time`); a lower-case
        ``z`` is UTC, as in Python (DuckDB's cast alone gives NULL).
        """
        return f"(CASE WHEN {self._valid_time(text)} THEN epoch_us(TRY_CAST(replace({text}, 'z', 'Z') AS TIMESTAMPTZ)) END)"

    def _valid_time(self, text: str) -> str:
        """Both engines and Python agree on the time: no year 0, no hour 24, no offset of a day or more, no
        offset after a bare date (Python would read ``2024-03-02+01:00`` as 01:00 UTC); same SQL in both."""
        tail = f"right({text}, 6)"
        return (f"(left({text}, 4) <> '0000' AND (length({text}) = 10 OR substr({text}, 11, 1) IN ('T', ' ')) "
                f"AND (length({text}) < 13 OR substr({text}, 12, 2) <> '24') "
                f"AND NOT (length({text}) >= 16 AND left({tail}, 1) IN ('+', '-') "
                f"AND TRY_CAST(substr({tail}, 2, 2) AS INTEGER) * 60 + TRY_CAST(right({text}, 2) AS INTEGER) >= 1440))")

    def iso(self, epoch_us: str) -> str:
        """The ISO 8601 text of a UTC time in microseconds, as the report's ``at`` writes it."""
        return (f"CASE WHEN {epoch_us} % 1000000 = 0 THEN strftime(make_timestamp({epoch_us}), '%Y-%m-%dT%H:%M:%SZ') "
                f"ELSE strftime(make_timestamp({epoch_us}), '%Y-%m-%dT%H:%M:%S.%fZ') END")

    def decimal(self, text: str) -> str:
        return f"CAST('{text}' AS DECIMAL(38,9))"

    def try_decimal(self, expr: str, precision: int = 21, scale: int = 9) -> str:
        """``TRY_CAST(expr AS DECIMAL(p,s))`` for text, NULL unless it is a plain ASCII number (same SQL in both).

        Bare ``TRY_CAST`` differs on odd text: DuckDB takes ``1_000``, Spark takes non-ASCII digits
        (``١٢``), control characters around the number and exponents of five digits.
        """
        return f"(CASE WHEN {self.full_match(expr, _NUMBER)} THEN TRY_CAST({expr} AS DECIMAL({precision},{scale})) END)"


class Backend(ABC):
    """An engine that runs the screen's SQL."""

    name: str
    dialect: Dialect
    staged = False  # True: run the result's steps as stored relations (kg.screen.pipeline.result_query)

    @abstractmethod
    def register_file(self, name: str, path: str | Path) -> list[str]:
        """Register a CSV (every column read as text) or Parquet file as view ``name``.

        Adds ``row_no`` (BIGINT, 0-based position in the file) so that ties keep
        file order, and returns the file's own column names (lower case).
        """

    @abstractmethod
    def register_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        """A small table from Python rows; column types are from :data:`SQL_TYPES`."""

    @abstractmethod
    def column_types(self, name: str) -> dict[str, str]:
        """Each column of a view and its type: string, integer, decimal, double, boolean, timestamp, date or other."""

    @abstractmethod
    def create_view(self, name: str, query: str) -> None: ...

    def materialize(self, name: str, query: str) -> None:
        """Like :meth:`create_view`, for a relation read several times (an engine may store or cache it)."""
        self.create_view(name, query)

    @abstractmethod
    def fetch(self, query: str) -> list[tuple]: ...

    @abstractmethod
    def write(self, query: str, path: str | Path) -> int:
        """Write the query's rows to ``path`` (CSV with a header, or Parquet, by extension) atomically."""

    def progress(self) -> float | None:
        """The running query's progress in [0, 1], when the engine can tell."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _kind(sql_type: str) -> str:
    t = sql_type.upper()
    if t in ("VARCHAR", "TEXT", "STRING") or t.startswith("VARCHAR"):
        return "string"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "integer"
    if t.startswith("DECIMAL"):
        return "decimal"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "double"
    if t == "BOOLEAN":
        return "boolean"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t == "DATE":
        return "date"
    return "other"


def _quote(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDBBackend(Backend):
    """DuckDB, embedded: out-of-core (spills to a temporary directory), memory bounded by ``memory_limit``."""

    name = "duckdb"

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        self.dialect = Dialect()
        self._db = duckdb.connect(":memory:")
        self._db.execute("SET TimeZone = 'UTC'")
        self._db.execute("SET preserve_insertion_order = true")
        self._db.execute("SET enable_progress_bar = true")  # for query_progress(); kg.screen draws its own bar
        self._db.execute("SET enable_progress_bar_print = false")
        self._db.execute(f"SET temp_directory = {_quote(tempfile.gettempdir())}")
        if threads:
            self._db.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self._db.execute(f"SET memory_limit = {_quote(memory_limit)}")
        self._lock = threading.Lock()
        self._source: str | None = None  # the input file, named by errors met while reading it

    def register_file(self, name: str, path: str | Path) -> list[str]:
        import duckdb

        source = Path(path)
        if not source.exists():
            raise InputError("no such file", where=str(path))
        fmt = table_format(source)
        try:
            if fmt == "csv":
                # the dialect of kg.csvinput (Python's csv module), not a sniffed one: a row with too few or
                # too many fields is an error naming its line, never a misread header
                spec = "{" + ", ".join(f"{_quote(name)}: 'VARCHAR'" for name in csv_header(source)) + "}"
                scan = (f"read_csv({_quote(source)}, columns = {spec}, header = true, auto_detect = false, "
                        "delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = false)")
                # row_number() OVER () numbers the rows in scan order: insertion order is preserved
                query = f"SELECT *, row_number() OVER () - 1 AS row_no FROM {scan}"
            else:
                target = f"{source}/**/*.parquet" if source.is_dir() else str(source)
                query = f"SELECT * EXCLUDE (file_row_number), file_row_number AS row_no " \
                        f"FROM read_parquet({_quote(target)}, file_row_number = true)"
            self._db.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
            columns = [row[0] for row in self._db.execute(f"DESCRIBE {name}").fetchall()]
        except duckdb.Error as error:
            raise InputError(f"cannot read as {fmt.upper()}: {_input_error_text(error)}", where=str(path)) from None
        self._source = str(path)
        return [c.lower() for c in columns if c != "row_no"]

    def register_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        spec = ", ".join(f"{col} {typ}" for col, typ in columns)
        self._db.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({spec})")
        if rows:
            marks = ", ".join("?" for _ in columns)
            self._db.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])

    def column_types(self, name: str) -> dict[str, str]:
        return {row[0].lower(): _kind(row[1]) for row in self._db.execute(f"DESCRIBE {name}").fetchall()}

    def create_view(self, name: str, query: str) -> None:
        self._db.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")

    def materialize(self, name: str, query: str) -> None:
        self._execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")

    def fetch(self, query: str) -> list[tuple]:
        return self._execute(query).fetchall()

    def _execute(self, sql: str) -> Any:
        """Run ``sql``; a fault in the input met while reading it (a CSV row of the wrong width deep in the file,
        bytes that are not UTF-8) is an InputError naming the file, not a traceback."""
        import duckdb

        try:
            return self._db.execute(sql)
        except (duckdb.InvalidInputException, duckdb.ConversionException) as error:
            named = re.search(r"^\s*file = (.+)$", str(error), re.M)  # the CSV reader names the file at fault
            raise InputError(f"cannot read the input: {_input_error_text(error)}",
                             where=named.group(1).strip() if named else self._source) from None

    def write(self, query: str, path: str | Path) -> int:
        target = Path(path)
        fmt = table_format(target)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{fmt}", dir=target.parent or ".")
        os.close(handle)
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        try:
            written = self._execute(f"COPY ({query}) TO {_quote(temporary)} ({options})").fetchone()
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return int(written[0]) if written else 0

    def progress(self) -> float | None:
        try:
            value = self._db.query_progress()
        except Exception:  # no query running, or an engine version without progress
            return None
        return None if value is None or value < 0 else min(1.0, value / 100)

    def close(self) -> None:
        self._db.close()
