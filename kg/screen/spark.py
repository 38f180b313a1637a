"""The screen on Apache Spark: :class:`SparkBackend` runs the same SQL as DuckDB, spelled by :class:`SparkDialect`.

Locally ``master="local[2]"`` (or env ``MAS_KG_SPARK_MASTER``); on a cluster pass its URL (``spark://..``,
``yarn``, ``k8s://..``) or an existing ``session``.  The session is set up so that the screen's SQL means
the same on both engines: UTC session time zone, non-ANSI casts (a bad cast is NULL, like ``TRY_CAST``),
and exact DECIMAL arithmetic (``allowPrecisionLoss=false``: DECIMAL(21,9) * DECIMAL(15,0) is DECIMAL(37,9)).

Spark SQL that both engines spell the same (checked by ``tests/test_spark_backend.py``): ``max_by(x, y)``,
``count(*) FILTER (WHERE ..)``, ``TRY_CAST(x AS DECIMAL(21,9))`` (but see :meth:`Dialect.try_decimal` for
odd text), exact DECIMAL products, ``CASE``, ``COALESCE``, ``IN``, ``x % y`` (sign of ``x``), ``||`` and
window frames ``ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW``.  Not the same: ``ORDER BY x`` puts
NULL last in DuckDB and first in Spark (write ``NULLS FIRST``/``NULLS LAST``); integer division is ``//``
in DuckDB and ``div`` in Spark; a quoted name is ``"x"`` in DuckDB and ```x``` in Spark.

Row numbers (``row_no``) are exact file order without a sort.  Parquet: ``_metadata.row_index`` (the
row's index in its file) plus the rows of the files before it, by path.  CSV: ``monotonically_increasing_id()``
counts rows consecutively within a task's input split; one small job counts the rows of each split
(``_metadata.file_path`` and ``file_block_start``, in file then byte order) and a broadcast join adds the
rows before it.  With ``multiline_csv`` (the default) a file is one split; otherwise the splits follow
``spark.sql.files.maxPartitionBytes`` and ``minPartitionNum`` (pinned at start), which must not change
while the view is in use.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from .backend import Backend, Dialect, csv_header, table_format

__all__ = ["SparkBackend", "SparkDialect"]

_OFFSET = "'([Zz]|[+-][0-9]{2}:[0-9]{2})$'"
# Spark's JVM logs: errors only, to stderr; task failures are raised in Python anyway, so not logged twice.
_LOG4J2 = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = fatal
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = fatal
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""
# Lines the JVM launcher prints whatever the log configuration says.
_NOISE = ("WARNING: Using incubator modules", "Using Spark's default log4j profile", "Setting default log level to",
          "To adjust logging level use sc.setLogLevel")
# Semantics the screen relies on: set on every session, also on one passed in.
_REQUIRED = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "false",
             "spark.sql.decimalOperations.allowPrecisionLoss": "false",
             "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


class SparkDialect(Dialect):
    """Spark SQL spellings; every method returns what :class:`Dialect` returns on DuckDB."""

    name = "spark"
    text = "STRING"

    def struct(self, fields: dict[str, str]) -> str:
        return "named_struct(" + ", ".join(f"'{name}', {expr}" for name, expr in fields.items()) + ")"

    def last_ignore_nulls(self, expr: str) -> str:
        return f"last({expr}, true)"

    def full_match(self, expr: str, pattern: str) -> str:
        # Java's $ also matches before a final line break; (?s:(?!.)) is the true end of the text.
        return f"({expr} RLIKE '^(?:{pattern})(?s:(?!.))')"

    def extract(self, expr: str, pattern: str, group: int) -> str:
        return f"regexp_extract({expr}, '{pattern}', {group})"  # '' when nothing matches, as in DuckDB

    def epoch_us(self, text: str) -> str:
        local = f"regexp_replace({text}, {_OFFSET}, '')"  # the date and time, read as UTC (session time zone)
        tail = f"right({text}, 6)"
        offset = (f"CASE WHEN length({text}) >= 16 AND left({tail}, 1) IN ('+', '-') THEN "
                  f"(CASE WHEN left({tail}, 1) = '-' THEN -1 ELSE 1 END) * "
                  f"(TRY_CAST(substr({tail}, 2, 2) AS BIGINT) * 3600 + TRY_CAST(right({text}, 2) AS BIGINT) * 60) * 1000000 "
                  "ELSE 0 END")
        return f"(CASE WHEN {self._valid_time(text)} THEN unix_micros(CAST({local} AS TIMESTAMP)) - {offset} END)"

    def iso(self, epoch_us: str) -> str:
        moment = f"timestamp_micros({epoch_us})"
        return (f"CASE WHEN {epoch_us} % 1000000 = 0 THEN date_format({moment}, \"yyyy-MM-dd'T'HH:mm:ss'Z'\") "
                f"ELSE date_format({moment}, \"yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'\") END")

    def decimal(self, text: str) -> str:
        return f"CAST('{text}' AS DECIMAL(38,9))"


def _one_line(error: BaseException) -> str:
    """The most specific line of a Spark/Java error: the root cause's message, without a stack trace."""
    java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    messages = []
    try:
        while java is not None and len(messages) < 20:
            text = java.getMessage()
            if text:
                messages.append(str(text))
            java = java.getCause()
    except Exception:  # the JVM went away: fall back to the Python text
        pass
    text = (messages[-1] if messages else "") or str(error)
    line = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    line = re.sub(r"\s*SQLSTATE: \w+$", "", line)
    return line if len(line) <= 300 else line[:297] + "..."


def _quote_name(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _csv_ready(frame: Any) -> Any:
    """The query's columns as the text DuckDB's COPY writes to CSV (same names and order, all STRING).

    DOUBLE becomes Python's ``repr`` text, as DuckDB writes it (``1e+20``, ``0.0001``, ``nan``, where Java
    writes ``1.0E20``, ``1.0E-4``, ``NaN``); DECIMAL keeps all its places (never ``1E-9``); TIMESTAMP is
    ``2024-03-02 08:00:00.5+00``.  The float steps are separate projections: one expression repeating
    its parts is many times slower.
    """
    from pyspark.sql import types as T

    fields = frame.schema.fields
    frame = frame.toDF(*[f"__c{i}" for i in range(len(fields))])  # positional names: duplicates and odd names are fine
    floats = [i for i, f in enumerate(fields) if isinstance(f.dataType, (T.DoubleType, T.FloatType))]
    out = [f"CAST(__c{i} AS STRING)" for i in range(len(fields))]
    for i, f in enumerate(fields):
        column, kind = f"__c{i}", f.dataType
        if isinstance(kind, T.DecimalType):
            out[i] = f"replace(format_number({column}, {kind.scale}), ',', '')"
        elif isinstance(kind, T.StringType):
            out[i] = column
        elif isinstance(kind, T.TimestampType) or type(kind).__name__ == "TimestampNTZType":
            micros = f"pmod(unix_micros(CAST({column} AS TIMESTAMP)), 1000000)"
            fraction = f"if({micros} = 0, '', concat('.', TRIM(TRAILING '0' FROM lpad(CAST({micros} AS STRING), 6, '0'))))"
            zone = "'+00'" if isinstance(kind, T.TimestampType) else "''"
            out[i] = f"concat(date_format({column}, 'yyyy-MM-dd HH:mm:ss'), {fraction}, {zone})"

    def shortest(v: str, digits: int, back: str) -> str:
        """The shortest ``format_string('%.Ne')`` that reads back as ``v``, upper case."""
        texts = f"transform(sequence(0, {digits - 1}), p -> format_string(concat('%.', p, 'e'), CAST({v} AS DOUBLE)))"
        return f"upper(element_at(filter({texts}, t -> CAST(t AS {back}) = {v}), 1))"

    # Java's toString gives a double's shortest digits in its own layout (JDK 19+; JDK 17 gives longer ones
    # for some numbers of 1e16 and more and for subnormals: searched for instead, as for every FLOAT).
    def java(i: int) -> str:
        v = f"__c{i}"
        if isinstance(fields[i].dataType, T.FloatType):
            return shortest(v, 9, "FLOAT")
        return (f"CASE WHEN abs({v}) >= 1e16 OR abs({v}) < 2.3e-308 THEN {shortest(v, 17, 'DOUBLE')} "
                f"ELSE CAST({v} AS STRING) END")

    steps = [
        lambda c, i: [f"{java(i)} AS {c}j"],
        lambda c, i: [f"if({c}j LIKE '-%', '-', '') AS {c}sign",
                      f"substring_index(regexp_replace({c}j, '^-', ''), 'E', 1) AS {c}m",
                      f"if(instr({c}j, 'E') > 0, CAST(substring_index({c}j, 'E', -1) AS INT), 0) AS {c}e"],
        lambda c, i: [f"replace({c}m, '.', '') AS {c}raw",
                      f"if(instr({c}m, '.') > 0, instr({c}m, '.'), length({c}m) + 1) - 2 + {c}e AS {c}first"],
        lambda c, i: [f"TRIM(LEADING '0' FROM {c}raw) AS {c}nz"],
        lambda c, i: [f"{c}first - (length({c}raw) - length({c}nz)) AS {c}x", f"TRIM(TRAILING '0' FROM {c}nz) AS {c}d"],
    ]
    for step in steps:
        frame = frame.selectExpr("*", *[e for i in floats for e in step(f"__f{i}", i)])
    for i in floats:  # digits d and the exponent x of the first one, laid out as Python's repr
        v, sign, x, d = f"__c{i}", f"__f{i}sign", f"__f{i}x", f"__f{i}d"
        out[i] = (f"CASE WHEN {v} IS NULL THEN NULL WHEN isnan({v}) THEN 'nan' WHEN {v} = double('inf') THEN 'inf' "
                  f"WHEN {v} = double('-inf') THEN '-inf' WHEN {d} = '' THEN concat({sign}, '0.0') "
                  f"WHEN {x} >= 16 OR {x} < -4 THEN concat({sign}, substr({d}, 1, 1), "
                  f"if(length({d}) > 1, concat('.', substr({d}, 2)), ''), 'e', if({x} < 0, '-', '+'), "
                  f"if(abs({x}) < 10, '0', ''), CAST(abs({x}) AS STRING)) "
                  f"WHEN {x} >= 0 THEN if(length({d}) <= {x} + 1, concat({sign}, rpad({d}, {x} + 1, '0'), '.0'), "
                  f"concat({sign}, substr({d}, 1, {x} + 1), '.', substr({d}, {x} + 2))) "
                  f"ELSE concat({sign}, '0.', repeat('0', -{x} - 1), {d}) END")
    return frame.selectExpr(*[f"{e} AS {_quote_name(f.name)}" for e, f in zip(out, fields)])


_SPECIAL = ',"#\n\r'  # DuckDB quotes a CSV field holding one of these, or an empty one


def _csv_field(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if text == "" or any(c in text for c in _SPECIAL) else text


def _csv_lines(frame: Any) -> Any:
    """Each row of a :func:`_csv_ready` frame as one CSV line (column ``value``), quoted as DuckDB quotes."""
    count = len(frame.columns)
    fields = [f"CASE WHEN __c{i} IS NULL THEN '' WHEN __c{i} = '' OR __c{i} RLIKE '[{_SPECIAL}]' "
              f"THEN concat('\"', replace(__c{i}, '\"', '\"\"'), '\"') ELSE __c{i} END" for i in range(count)]
    return frame.toDF(*[f"__c{i}" for i in range(count)]).selectExpr(f"concat_ws(',', {', '.join(fields)}) AS value")


def _forward(stream: Any) -> None:
    """Copy the JVM's stdout and stderr to our stderr, without the launcher's fixed notices."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        if not line.startswith(_NOISE):
            try:
                sys.stderr.write(line)
            except Exception:  # interpreter shutting down
                return


class SparkBackend(Backend):
    """Apache Spark: a local JVM (``local[2]``) or a cluster; the screen's views are Spark temp views.

    ``session``, or else the session this process already runs, is shared and left running by
    :meth:`close`; otherwise a new one is started (``master``, ``config`` apply to it only) and stopped.

    ``multiline_csv=True`` parses quoted fields with line breaks exactly as DuckDB does, reading each CSV
    file in one task; ``False`` splits large files over tasks (faster on a cluster) and is right when no
    quoted field holds a line break.
    """

    name = "spark"

    def __init__(self, *, master: str | None = None, app_name: str = "mas-kg screen", config: dict | None = None,
                 session: Any = None, multiline_csv: bool = True) -> None:
        self.dialect = SparkDialect()
        self._multiline = bool(multiline_csv)
        self._owned = False  # stop on close only a session this backend started
        self.spark = session if session is not None else self._start(master, app_name, dict(config or {}))
        conf = self.spark.conf
        for key, value in _REQUIRED.items():
            conf.set(key, value)
        if conf.get("spark.sql.files.minPartitionNum", None) is None:  # the split layout must not follow executors
            conf.set("spark.sql.files.minPartitionNum", str(self.spark.sparkContext.defaultParallelism))

    def _start(self, master: str | None, app_name: str, config: dict) -> Any:
        from pyspark import SparkConf, SparkContext
        from pyspark.sql import SparkSession

        if SparkContext._active_spark_context is not None:  # this process's running session: share it
            return SparkSession.builder.getOrCreate()
        master = master or os.environ.get("MAS_KG_SPARK_MASTER") or "local[2]"
        local = master.startswith("local")
        settings = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                    "spark.sql.catalogImplementation": "in-memory", "spark.sql.shuffle.partitions": "4" if local else "200"}
        if local:
            settings.update({"spark.driver.memory": "1g", "spark.driver.host": "127.0.0.1",
                             "spark.driver.bindAddress": "127.0.0.1"})
        log_config = None
        if not any("log4j" in str(v) for v in config.values()):  # read once, as the JVM starts
            handle, log_config = tempfile.mkstemp(prefix="mas-kg-log4j2-", suffix=".properties")
            with os.fdopen(handle, "w") as out:
                out.write(_LOG4J2)
            options = f"-Dlog4j2.configurationFile=file:{log_config}"
            extra = config.pop("spark.driver.extraJavaOptions", "")
            settings["spark.driver.extraJavaOptions"] = f"{extra} {options}".strip()
        settings.update({k: str(v) for k, v in config.items()})
        settings.update(_REQUIRED)
        conf = SparkConf().setMaster(master).setAppName(app_name).setAll(list(settings.items()))
        try:
            if SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
                # The JVM writes to a pipe we copy to stderr, so nothing it prints reaches our stdout.
                from pyspark.java_gateway import launch_gateway

                gateway = launch_gateway(conf, popen_kwargs={"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT})
                if gateway.proc is not None:
                    threading.Thread(target=_forward, args=(gateway.proc.stdout,), name="spark-jvm", daemon=True).start()
                SparkContext._ensure_initialized(gateway=gateway, conf=conf)
            session = SparkSession.builder.config(conf=conf).getOrCreate()
        finally:
            if log_config:
                Path(log_config).unlink(missing_ok=True)
        session.sparkContext.setLogLevel("ERROR")
        self._owned = True
        return session

    # -- reading ---------------------------------------------------------------------------------------

    def register_file(self, name: str, path: str | Path) -> list[str]:
        from pyspark.sql import functions as F

        text = str(path)
        if "://" not in text and not Path(path).exists():  # a URI (hdfs://, s3a://) is Spark's to find
            raise InputError("no such file", where=text)
        fmt = table_format(path)
        if fmt == "csv" and Path(path).is_file():
            csv_header(Path(path))  # the same refusals as DuckDB: an empty file, a column named twice, not UTF-8
        try:
            if fmt == "csv":
                frame = (self.spark.read.format("csv")
                         .options(header="true", inferSchema="false", multiLine=str(self._multiline).lower(),
                                  mode="FAILFAST", escape='"', encoding="UTF-8")
                         .load(text))
                columns = list(frame.columns)
                # DuckDB reads an empty field, quoted or not, as NULL; a BOM is not part of the first name.
                names = [c.lstrip("\ufeff") if i == 0 else c for i, c in enumerate(columns)]
                frame = frame.select(*[F.expr(f"nullif({_quote_name(c)}, '')").alias(n) for c, n in zip(columns, names)])
                position = F.monotonically_increasing_id()  # consecutive within a split
                split = F.col("_metadata.file_block_start")
            else:
                frame = self.spark.read.parquet(text)
                names = list(frame.columns)
                position, split = F.col("_metadata.row_index"), F.lit(0)  # the row's index in its file
            keyed = frame.select("*", F.col("_metadata.file_path").alias("__file"), split.alias("__start"),
                                 position.alias("__id"))
            splits = keyed.groupBy("__file", "__start").agg(F.count(F.lit(1)).alias("rows"),
                                                             F.min("__id").alias("first")).collect()
        except Exception as error:
            problem = _one_line(error)
            if "PATH_NOT_FOUND" in problem:
                raise InputError("no such file", where=text) from None
            raise InputError(f"cannot read as {fmt.upper()}: {problem}", where=text) from None
        bases, before = [], 0
        for part in sorted(splits, key=lambda s: (s["__file"], s["__start"])):  # file order, then byte order
            bases.append((part["__file"], part["__start"], before - part["first"]))
            before += part["rows"]
        base = self.spark.createDataFrame(bases, "__file STRING, __start BIGINT, __base BIGINT")
        view = keyed.join(F.broadcast(base), ["__file", "__start"]).select(
            *[F.col(_quote_name(n)) for n in names], (F.col("__id") + F.col("__base")).alias("row_no"))
        view.createOrReplaceTempView(name)
        return [n.lower() for n in names]

    def register_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        from decimal import ROUND_HALF_UP, Context, Decimal

        places, exact = Decimal(1).scaleb(-9), Context(prec=80, rounding=ROUND_HALF_UP)
        convert = {"VARCHAR": lambda v: ("true" if v else "false") if isinstance(v, bool) else str(v), "BIGINT": int,
                   "BOOLEAN": bool, "DOUBLE": float, "DECIMAL(38,9)": lambda v: Decimal(str(v)).quantize(places, context=exact),
                   "DECIMAL(18,0)": lambda v: Decimal(int(v))}
        kinds = [typ.upper().replace(" ", "") for _, typ in columns]
        schema = ", ".join(f"{_quote_name(col)} {'STRING' if k == 'VARCHAR' else k}" for (col, _), k in zip(columns, kinds))
        data = [tuple(None if v is None else convert[k](v) for v, k in zip(row, kinds)) for row in rows]
        self.spark.createDataFrame(data, schema).createOrReplaceTempView(name)

    def column_types(self, name: str) -> dict[str, str]:
        kinds = {"StringType": "string", "VarcharType": "string", "CharType": "string", "ByteType": "integer",
                 "ShortType": "integer", "IntegerType": "integer", "LongType": "integer", "DecimalType": "decimal",
                 "DoubleType": "double", "FloatType": "double", "BooleanType": "boolean", "TimestampType": "timestamp",
                 "TimestampNTZType": "timestamp", "DateType": "date"}
        return {f.name.lower(): kinds.get(type(f.dataType).__name__, "other") for f in self.spark.table(name).schema.fields}

    staged = True  # Spark's optimiser would inline every layer of criterion columns into one projection

    def create_view(self, name: str, query: str) -> None:
        self.spark.sql(query).createOrReplaceTempView(name)

    def materialize(self, name: str, query: str) -> None:
        """A stored relation: a checkpoint cuts the plan, so later steps never re-expand it."""
        frame = self.spark.sql(query).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)

    def fetch(self, query: str) -> list[tuple]:
        """The rows as tuples; a struct is a dict and a TIMESTAMP an aware UTC datetime, as DuckDB returns them."""
        from datetime import datetime, timedelta, timezone

        from pyspark.sql import Row, functions as F, types as T

        frame = self.spark.sql(query)
        stamps = {i for i, f in enumerate(frame.schema.fields) if isinstance(f.dataType, T.TimestampType)}
        if stamps:  # Python's conversion would use the local time zone: fetch microseconds instead
            frame = frame.select(*[F.expr(f"unix_micros({_quote_name(f.name)})") if i in stamps else frame[i]
                                   for i, f in enumerate(frame.schema.fields)])
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

        def plain(v: Any) -> Any:
            if isinstance(v, Row):
                return {k: plain(x) for k, x in v.asDict().items()}
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v

        return [tuple(epoch + timedelta(microseconds=v) if i in stamps and v is not None else plain(v)
                      for i, v in enumerate(row)) for row in frame.collect()]

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, query: str, path: str | Path, *, single_file: bool = True) -> int:
        """Write the rows to one file at ``path`` atomically; the number of rows written.

        Spark's tasks write parts into a temporary directory beside ``path``; the driver joins them, in
        order, into one file and renames it into place.  So ``path`` must be on a file system the driver
        (and, on a cluster, every executor) can reach and rename in: a local disk or a shared mount.  With
        ``single_file=False`` Spark's own writer makes ``path`` a directory of parts instead (for HDFS or
        S3; atomic only as far as Spark's commit protocol is).  CSV is written as DuckDB's COPY writes it.
        """
        from pyspark.sql import Observation, functions as F

        fmt = table_format(path)
        frame = self.spark.sql(query)
        names = frame.columns
        if fmt == "csv":
            frame = _csv_ready(frame)
        counted = Observation()
        frame = frame.observe(counted, F.count(F.lit(1)).alias("rows"))
        writer_options = {"header": "true", "escape": '"', "ignoreLeadingWhiteSpace": "false",
                          "ignoreTrailingWhiteSpace": "false", "encoding": "UTF-8"} if fmt == "csv" else {}
        if not single_file:  # Spark's CSV writer quotes a little differently ("#" only at the start of a line)
            frame.write.mode("overwrite").format(fmt).options(**writer_options).save(str(path))
            return int(counted.get["rows"])
        # Each task writes its part (for an ORDER BY, part i holds the i-th range) and the driver joins the
        # parts in task order: coalesce(1) would follow data locality, which can take a later part first.
        target = Path(path).absolute()
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            folder, single = scratch / "parts", scratch / f"single.{fmt}"
            data = _csv_lines(frame) if fmt == "csv" else frame
            data.write.format("text" if fmt == "csv" else "parquet").save(str(folder))
            parts = sorted((p for p in folder.iterdir() if p.name.startswith("part-")),
                           key=lambda p: int(p.name.split("-")[1]))
            if fmt == "csv":  # the lines are made in SQL, so every byte is as DuckDB writes it
                with open(single, "wb") as out:
                    out.write((",".join(map(_csv_field, names)) + "\n").encode())
                    for part in parts:
                        with open(part, "rb") as lines:
                            shutil.copyfileobj(lines, out, 1 << 20)
            elif len(parts) == 1:
                parts[0].rename(single)
            else:
                _join_parquet(parts, single)
            os.chmod(single, _usual_mode(scratch))
            os.replace(single, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return int(counted.get["rows"])

    def progress(self) -> float | None:
        try:
            tracker = self.spark.sparkContext.statusTracker()
            done = total = 0
            for stage in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage)
                if info is not None:
                    done, total = done + info.numCompletedTasks, total + info.numTasks
        except Exception:  # stopped, or a session without a SparkContext (Spark Connect)
            return None
        return done / total if total else None

    def close(self) -> None:
        if self._owned and self.spark is not None:
            self.spark.stop()
            self.spark = None


def _join_parquet(parts: list[Path], single: Path) -> None:
    """The parts' rows, in order, as one Parquet file (row groups of at most 128k rows)."""
    import pyarrow.parquet as pq

    with pq.ParquetWriter(single, pq.read_schema(parts[0])) as writer:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=1 << 17):
                writer.write_batch(batch)


def _usual_mode(folder: Path) -> int:
    """0666 less the umask (as :func:`kg.atomic.write_text_atomic` gives), learnt without changing the umask."""
    probe = folder / ".mode"
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return probe.stat().st_mode & 0o777
