"""OMOP CDM v5.4 tables read as the screen's long format (``patient_id, time, code, value, unit, ...``).

A directory holds ``person``, ``measurement``, ``condition_occurrence`` and the vocabulary's
``concept`` table, each as ``<table>.csv``, ``<table>.parquet`` (file or directory of parts) or a
directory ``<table>/`` of Parquet parts; names are case-insensitive.  :func:`omop_long_query` is one
SELECT, in SQL that DuckDB and Spark both run, giving one long-format row per fact:

* **measurement** -> an observation.  ``code``: ``LOINC:<concept_code>`` of ``measurement_concept_id``
  when that concept's ``vocabulary_id`` is ``LOINC``; else ``LOINC:<measurement_source_value>`` when
  the source value looks like a LOINC code (``2276-4``); else ``SCTID:<concept_code>`` for a SNOMED
  concept; else the source value as given (a short name such as ``ferritin`` resolves; anything else
  is rejected as an unknown code); else ``OMOP:<measurement_concept_id>``.  ``value``:
  ``value_as_number`` rounded to 9 decimals, as plain text without trailing zeros (``12.50`` ->
  ``12.5``, a double ``1e-05`` -> ``0.00001``; the same text on both engines); a text that is not a
  number, a magnitude of 10^15 or more, and NULL are passed on as they are (the screen rejects them).  ``unit``: the
  ``concept_code`` of ``unit_concept_id`` when its vocabulary is ``UCUM``, else ``unit_source_value``.
  ``comparator`` from ``operator_concept_id`` (vocabulary "Meas Value Operator"): 4171756 ``<``,
  4171754 ``<=``, 4172703 ``=`` (no comparator), 4171755 ``>=``, 4172704 ``>``; 0 or NULL: none; any
  other id is passed on as ``operator_concept_id <id>`` and the row is rejected.  ``time``:
  ``measurement_datetime``, else ``measurement_date``: ``YYYY-MM-DD`` stays a date;
  ``YYYY-MM-DD[ T]hh:mm:ss[.fff][zone]`` becomes ``YYYY-MM-DDThh:mm:ss`` plus ``Z`` (no zone, or
  zero offset) or ``+hh:mm`` (fractions of a second dropped; OMOP date-times are taken as UTC).
* **condition_occurrence** -> a condition, ``value`` ``confirmed``.  ``code``: ``SCTID:<concept_code>``
  of a SNOMED ``condition_concept_id``; else ``condition_source_value``; else ``OMOP:<id>``.  The
  ontology maps SCTIDs for sJIA, AOSD, SLE, Kawasaki disease, MAS, HLH, primary HLH, DIC and
  Chediak-Higashi syndrome; it has none for infection, malignancy or sepsis, which are therefore
  rejected as unknown codes (and counted).  Always ``confirmed``: OMOP puts "rule out" and "question
  of" diagnoses in ``observation``, not in this table, and no Condition Status concept for
  "suspected" was verified.  ``time``: ``condition_start_datetime``, else ``condition_start_date``.
* **person** -> a ``sex`` row (``gender_concept_id`` 8507 male, 8532 female, anything else
  unknown) and an ``age_years`` row: age at the patient's latest measurement date (else latest
  condition start date), by the FHIR reader's rule (completed years plus the elapsed fraction of
  the birthday-year, 29 February counting as 28 February, truncated to 6 decimals).  Birth date:
  the date of ``birth_datetime``; else ``year_of_birth`` with ``month_of_birth`` and
  ``day_of_birth``, a missing month giving 1 July and a missing day the 15th, or the first day of
  the year (month) when that imputed day falls after the reference date.  No reference date or no
  birth year: no age row.  A birth after the reference date, or one that is not a calendar date,
  gives an age that is a sentence, so that the screen reports it.
* **concept**: only ``concept_id``, ``vocabulary_id`` and ``concept_code`` are read, and only
  LOINC, UCUM and SNOMED concepts; a concept id listed twice is treated as unknown.  No other
  concept id is hard-coded.  ``observation`` is not read: OMOP findings are SNOMED concepts, the
  ontology's clinical findings have HP codes only, so every row would be an unknown code.

``row_no`` (0, 1, ...): person rows (by ``person_id``), then measurements (by ``measurement_id``),
then conditions (by ``condition_occurrence_id``); one global ``row_number()`` (on Spark, one partition).

Use: ``views = register_omop(backend, directory)`` (find, register, check, add missing optional
columns), then ``backend.create_view("long_input", omop_long_query(backend.dialect, views))``.
``examples/omop`` is a synthetic extract whose LOINC, UCUM and SNOMED concepts have ids in the
site-local range above 2,000,000,000 (their codes are real); ``examples/omop/long.csv`` is its
long format, written by hand.

>>> from kg.screen.backend import DuckDBBackend
>>> with DuckDBBackend() as db:
...     db.register_rows("person", [("person_id", "BIGINT"), ("gender_concept_id", "BIGINT"),
...                                 ("year_of_birth", "BIGINT")], [(1, 8532, 2017)])
...     db.register_rows("measurement", [(c, "VARCHAR") for c in REQUIRED_COLUMNS["measurement"]]
...                      + [("measurement_source_value", "VARCHAR")],
...                      [("9", "1", "0", "2024-05-01", "12.50", "0", "2276-4")])
...     db.register_rows("condition_occurrence", [(c, "VARCHAR") for c in REQUIRED_COLUMNS["condition_occurrence"]], [])
...     db.register_rows("concept", [(c, "VARCHAR") for c in REQUIRED_COLUMNS["concept"]], [])
...     views = prepare_omop_views(db, {table: table for table in OMOP_TABLES})
...     db.fetch(f"SELECT code, value, time FROM ({omop_long_query(db.dialect, views)}) ORDER BY row_no")
[('age_years', '6.833333', None), ('sex', 'female', None), ('LOINC:2276-4', '12.5', '2024-05-01')]
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from ..errors import InputError
from .backend import Backend, Dialect

__all__ = ["OMOP_TABLES", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "OPERATORS", "GENDERS", "find_omop_tables",
           "looks_like_omop", "check_omop_columns", "prepare_omop_views", "register_omop", "omop_long_query"]

OMOP_TABLES = ("person", "measurement", "condition_occurrence", "concept")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "gender_concept_id", "year_of_birth"),
    "measurement": ("measurement_id", "person_id", "measurement_concept_id", "measurement_date", "value_as_number",
                    "unit_concept_id"),
    "condition_occurrence": ("condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date"),
    "concept": ("concept_id", "vocabulary_id", "concept_code"),
}
#: Read when present; a missing one is taken as all NULL (:func:`prepare_omop_views`).
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("month_of_birth", "day_of_birth", "birth_datetime"),
    "measurement": ("measurement_datetime", "operator_concept_id", "measurement_source_value", "unit_source_value"),
    "condition_occurrence": ("condition_start_datetime", "condition_source_value"),
    "concept": (),
}

#: OMOP "Meas Value Operator" concepts (None: "=", no comparator).  Seen in public ETL code: an
#: OMOP-to-i2b2 export (4172703 E, 4171756 LT, 4172704 GT, 4171754 LE, 4171755 GE), a MIMIC-II-to-OMOP
#: ETL ("4171754 -- SNOMED Meas Value Operator (<=)", likewise <, >=, >) and an ATLAS cohort (4171756 "<").
OPERATORS: dict[int, str | None] = {4171756: "<", 4171754: "<=", 4172703: None, 4171755: ">=", 4172704: ">"}
#: OMOP Gender concepts, seen in the MIMIC-IV-to-OMOP ETL ``cdm_person`` ("8532 -- FEMALE", "8507 -- MALE").
GENDERS: dict[int, str] = {8507: "male", 8532: "female"}


def _allowed(column: str) -> tuple[str, ...]:
    """The column kinds (:meth:`Backend.column_types`) an OMOP column may have."""
    if column == "value_as_number":
        return ("integer", "decimal", "double", "string")
    if column.endswith(("_date", "_datetime")):
        return ("date", "timestamp", "string")
    return ("string",) if column == "vocabulary_id" else ("integer", "string")


_SUFFIXES = (".csv", ".parquet", ".pq")
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATETIME = _DATE + "[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
_NUM = "[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?"
_INT = "[+-]?[0-9]+"
_US_PER_DAY = 86400000000


def _table_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in OMOP_TABLES:
            return name[: -len(suffix)]
    if path.is_dir() and name in OMOP_TABLES and any(path.rglob("*.parquet")):
        return name
    return None


def find_omop_tables(directory: str | Path) -> dict[str, Path]:
    """The file (or Parquet directory) of each OMOP table in ``directory``; InputError names a missing table."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError("not a directory of OMOP tables", where=str(directory))
    found: dict[str, list[Path]] = {}
    for path in sorted(root.iterdir()):
        table = _table_of(path)
        if table:
            found.setdefault(table, []).append(path)
    for table in OMOP_TABLES:
        if table not in found:
            raise InputError(f"no OMOP {table} table ({table}.csv or {table}.parquet)", where=str(directory))
        if len(found[table]) > 1:
            names = ", ".join(p.name for p in found[table])
            raise InputError(f"OMOP table {table} is given twice ({names})", where=str(directory))
    return {table: found[table][0] for table in OMOP_TABLES}


def looks_like_omop(path: str | Path) -> bool:
    """A directory with a ``person`` and a ``measurement`` table (so: meant as OMOP input)."""
    root = Path(path)
    return root.is_dir() and {"person", "measurement"} <= {_table_of(p) for p in root.iterdir()}


def check_omop_columns(backend: Backend, views: Mapping[str, str] | Iterable[str], *,
                       where: Mapping[str, str] | None = None) -> None:
    """InputError naming the table and column when a required column is missing or a column has a wrong type.

    ``views`` maps each OMOP table to its view (or lists tables registered under their own names);
    ``where`` maps a table to its file, for the message.  Identifiers must be integer or text,
    ``value_as_number`` a number or text, dates date, timestamp or text.  Text values are not
    scanned: one that is not a number (or date) reaches the screen, which rejects that row.
    """
    named = views if isinstance(views, Mapping) else {name: name for name in views}
    for table in OMOP_TABLES:
        if table not in named:
            raise InputError(f"no OMOP {table} table")
        types = backend.column_types(named[table])
        place = (where or {}).get(table)
        for column in REQUIRED_COLUMNS[table]:
            if column not in types:
                raise InputError(f"OMOP table {table} has no column {column!r}", where=place)
        for column in REQUIRED_COLUMNS[table] + OPTIONAL_COLUMNS[table]:
            allowed = _allowed(column)
            if column in types and types[column] not in allowed:
                raise InputError(f"OMOP table {table}: column {column!r} is {types[column]}, expected "
                                 f"{' or '.join('text' if k == 'string' else k for k in allowed)}", where=place)


def prepare_omop_views(backend: Backend, raw: Mapping[str, str], *, prefix: str = "",
                       where: Mapping[str, str] | None = None) -> dict[str, str]:
    """Check the tables (:func:`check_omop_columns`) and give each a view with every optional column.

    Returns the view of each table: ``raw``'s own view when it has all optional columns, else a
    view ``<prefix><table>_cdm`` adding the missing ones as NULL text.
    """
    check_omop_columns(backend, raw, where=where)
    views = {}
    for table in OMOP_TABLES:
        present = backend.column_types(raw[table])
        missing = [c for c in OPTIONAL_COLUMNS[table] if c not in present]
        views[table] = raw[table]
        if missing:
            views[table] = f"{prefix}{table}_cdm"
            extra = ", ".join(f"CAST(NULL AS STRING) AS {c}" for c in missing)
            backend.create_view(views[table], f"SELECT *, {extra} FROM {raw[table]}")
    return views


def register_omop(backend: Backend, directory: str | Path, *, prefix: str = "omop_") -> dict[str, str]:
    """Register a directory's OMOP tables, check them, and return the views :func:`omop_long_query` reads.

    Then ``backend.create_view(name, omop_long_query(backend.dialect, views))`` is the long table.
    """
    files = find_omop_tables(directory)
    raw = {}
    for table, path in files.items():
        raw[table] = f"{prefix}{table}_file"
        backend.register_file(raw[table], path)
    return prepare_omop_views(backend, raw, prefix=prefix, where={t: str(p) for t, p in files.items()})


# ---- SQL pieces (both engines: CAST .. AS STRING, TRY_CAST, regexp_replace, lpad, substr, ||).  Each step is
# its own CTE over plain columns, so that no expression grows large (Spark's generated code has a size limit).

def _txt(column: str) -> str:
    return f"NULLIF(TRIM(CAST({column} AS STRING)), '')"


def _int(d: Dialect, text: str) -> str:
    """A text that is an integer, as BIGINT (both engines agree: no '12.0', no spaces)."""
    return f"CASE WHEN {d.full_match(text, _INT)} THEN TRY_CAST({text} AS BIGINT) END"


def _zone(d: Dialect, text: str) -> str:
    return d.extract(text, "(Z|[+-][0-9]{2}(:?[0-9]{2})?)$", 1)


def _iso(d: Dialect, text: str, zone: str) -> str:
    """An ISO date or date-time text as the long format writes it (``zone``: :func:`_zone`); else NULL."""
    offset = (f"CASE WHEN {zone} = '' OR {zone} = 'Z' OR {d.full_match(zone, '[+-]00(:?00)?')} THEN 'Z' "
              f"WHEN length({zone}) = 3 THEN {zone} || ':00' "
              f"WHEN length({zone}) = 5 THEN substr({zone}, 1, 3) || ':' || substr({zone}, 4, 2) ELSE {zone} END")
    return (f"CASE WHEN {d.full_match(text, _DATE)} THEN {text} WHEN {d.full_match(text, _DATETIME)} THEN "
            f"substr({text}, 1, 10) || 'T' || substr({text}, 12, 8) || ({offset}) END")


def _date_text(year: str, month: str, day: str) -> str:
    return (f"lpad(CAST({year} AS STRING), 4, '0') || '-' || lpad(CAST({month} AS STRING), 2, '0') || '-' || "
            f"lpad(CAST({day} AS STRING), 2, '0')")


def _anniversary(year: str) -> str:
    """The birthday in ``year`` as a date text: 29 February counts as 28 February in a common year."""
    leap = f"(({year}) % 4 = 0 AND ({year}) % 100 <> 0 OR ({year}) % 400 = 0)"
    return _date_text(year, "bm", f"CASE WHEN bm = 2 AND bd = 29 AND NOT {leap} THEN 28 ELSE bd END")


def _days(d: Dialect, iso_date: str) -> str:
    return f"CAST(FLOOR(CAST({d.epoch_us(iso_date)} AS DOUBLE) / CAST({_US_PER_DAY} AS DOUBLE)) AS BIGINT)"


def omop_long_query(dialect: Dialect, views: Mapping[str, str] | None = None) -> str:
    """One SELECT giving the long format (all text) plus ``row_no`` from the OMOP views (default: table names)."""
    d = dialect
    v = {table: (views or {}).get(table, table) for table in OMOP_TABLES}
    null = "CAST(NULL AS STRING)"
    comparator = " ".join(f"WHEN {cid} THEN {repr(sign) if sign else null}" for cid, sign in OPERATORS.items())
    gender = " ".join(f"WHEN {cid} THEN '{name}'" for cid, name in GENDERS.items())
    has_dt = d.full_match("bdt", _DATE)
    mid = "CASE WHEN by0 * 10000 + bm_mid * 100 + bd_mid > refkey AND by0 * 10000 + bm_first * 100 + bd_first <= refkey"
    frac = "CAST(FLOOR(CAST(d_ref - d_last AS DOUBLE) * 1000000 / CAST(d_next - d_last AS DOUBLE)) AS BIGINT)"
    digits = "CAST(CAST(abs(vdec) * CAST(1000000000 AS DECIMAL(10,0)) AS DECIMAL(38,0)) AS STRING)"
    return f"""WITH c0 AS (
  SELECT {_int(d, 'cid_t')} AS cid, vocab, ccode FROM (
    SELECT {_txt('concept_id')} AS cid_t, {_txt('vocabulary_id')} AS vocab, {_txt('concept_code')} AS ccode
    FROM {v['concept']}) c WHERE vocab IN ('LOINC', 'UCUM', 'SNOMED')
), codes AS (
  SELECT cid, vocab, ccode FROM (SELECT cid, MIN(vocab) AS vocab, MIN(ccode) AS ccode, COUNT(*) AS n FROM c0
    WHERE cid IS NOT NULL AND vocab IN ('LOINC', 'SNOMED') GROUP BY cid) c WHERE n = 1
), units AS (
  SELECT cid, ccode FROM (SELECT cid, MIN(ccode) AS ccode, COUNT(*) AS n FROM c0
    WHERE cid IS NOT NULL AND vocab = 'UCUM' GROUP BY cid) u WHERE n = 1
), m1 AS (
  SELECT {_txt('person_id')} AS patient_id, {_txt('measurement_datetime')} AS dt, {_txt('measurement_date')} AS dd,
    {_txt('measurement_concept_id')} AS concept_text, {_txt('measurement_source_value')} AS source,
    {_txt('unit_concept_id')} AS unit_text, {_txt('unit_source_value')} AS unit_source,
    {_txt('value_as_number')} AS vtext, {_txt('operator_concept_id')} AS op_text, {_txt('measurement_id')} AS k2
  FROM {v['measurement']}
), m2 AS (
  SELECT *, {_zone(d, 'dt')} AS dt_zone, {_zone(d, 'dd')} AS dd_zone, {_int(d, 'concept_text')} AS concept,
    {_int(d, 'unit_text')} AS unit_concept, {_int(d, 'op_text')} AS op, {_int(d, 'k2')} AS k1,
    CASE WHEN {d.full_match('vtext', _NUM)} THEN TRY_CAST(vtext AS DECIMAL(38,9)) END AS vdec
  FROM m1
), m3 AS (
  SELECT *, COALESCE({_iso(d, 'dt', 'dt_zone')}, {_iso(d, 'dd', 'dd_zone')}, dt, dd) AS time,
    CASE WHEN abs(vdec) < 1000000000000000 THEN {digits} END AS digits
  FROM m2
), m4 AS (
  SELECT *, CASE WHEN length(digits) < 10 THEN lpad(digits, 10, '0') ELSE digits END AS d10 FROM m3
), meas AS (
  SELECT patient_id, time, concept, concept_text, source, unit_concept, unit_source, k1, k2,
    CASE WHEN d10 IS NULL THEN vtext ELSE (CASE WHEN vdec < 0 AND digits <> '0' THEN '-' ELSE '' END)
      || substr(d10, 1, length(d10) - 9)
      || COALESCE('.' || NULLIF(regexp_replace(substr(d10, length(d10) - 8, 9), '0+$', ''), ''), '') END AS value,
    CASE op WHEN 0 THEN {null} {comparator} ELSE 'operator_concept_id ' || op_text END AS comparator
  FROM m4
), c1 AS (
  SELECT {_txt('person_id')} AS patient_id, {_txt('condition_start_datetime')} AS dt,
    {_txt('condition_start_date')} AS dd, {_txt('condition_concept_id')} AS concept_text,
    {_txt('condition_source_value')} AS source, {_txt('condition_occurrence_id')} AS k2
  FROM {v['condition_occurrence']}
), c2 AS (
  SELECT *, {_zone(d, 'dt')} AS dt_zone, {_zone(d, 'dd')} AS dd_zone, {_int(d, 'concept_text')} AS concept,
    {_int(d, 'k2')} AS k1 FROM c1
), cond AS (
  SELECT patient_id, COALESCE({_iso(d, 'dt', 'dt_zone')}, {_iso(d, 'dd', 'dd_zone')}, dt, dd) AS time,
    concept, concept_text, source, k1, k2 FROM c2
), refs AS (
  SELECT patient_id, COALESCE(MAX(CASE WHEN part = 1 THEN day END), MAX(day)) AS ref FROM (
    SELECT patient_id, 1 AS part, substr(time, 1, 10) AS day FROM meas
    UNION ALL SELECT patient_id, 2 AS part, substr(time, 1, 10) AS day FROM cond) r
  WHERE {d.full_match('day', _DATE)} GROUP BY patient_id
), p1 AS (
  SELECT {_txt('person_id')} AS patient_id, {_txt('gender_concept_id')} AS gender_text,
    {_txt('year_of_birth')} AS y_text, {_txt('month_of_birth')} AS m_text, {_txt('day_of_birth')} AS d_text,
    substr({_txt('birth_datetime')}, 1, 10) AS bdt
  FROM {v['person']}
), p2 AS (
  SELECT patient_id, {_int(d, 'patient_id')} AS k1, patient_id AS k2, {_int(d, 'gender_text')} AS gender,
    CASE WHEN {has_dt} THEN {_int(d, 'substr(bdt, 1, 4)')} ELSE {_int(d, 'y_text')} END AS by0,
    CASE WHEN {has_dt} THEN {_int(d, 'substr(bdt, 6, 2)')} END AS dt_m,
    CASE WHEN {has_dt} THEN {_int(d, 'substr(bdt, 9, 2)')} END AS dt_d,
    CASE WHEN {has_dt} THEN 1 ELSE 0 END AS has_dt, {_int(d, 'm_text')} AS m0, {_int(d, 'd_text')} AS d0
  FROM p1
), persons AS (
  SELECT patient_id, k1, k2, by0, CASE gender {gender} ELSE 'unknown' END AS sex,
    CASE WHEN has_dt = 1 THEN dt_m WHEN m0 BETWEEN 1 AND 12 THEN m0 ELSE 7 END AS bm_mid,
    CASE WHEN has_dt = 1 THEN dt_d WHEN NOT m0 BETWEEN 1 AND 12 OR m0 IS NULL THEN 1
         WHEN d0 BETWEEN 1 AND 31 THEN d0 ELSE 15 END AS bd_mid,
    CASE WHEN has_dt = 1 THEN dt_m WHEN m0 BETWEEN 1 AND 12 THEN m0 ELSE 1 END AS bm_first,
    CASE WHEN has_dt = 1 THEN dt_d WHEN m0 BETWEEN 1 AND 12 AND d0 BETWEEN 1 AND 31 THEN d0 ELSE 1 END AS bd_first
  FROM p2
), b1 AS (
  SELECT p.*, r.ref, CAST(substr(r.ref, 1, 4) AS BIGINT) AS ry, CAST(substr(r.ref, 1, 4) AS BIGINT) * 10000
    + CAST(substr(r.ref, 6, 2) AS BIGINT) * 100 + CAST(substr(r.ref, 9, 2) AS BIGINT) AS refkey
  FROM persons p JOIN refs r ON r.patient_id = p.patient_id
  WHERE p.by0 IS NOT NULL AND p.bm_mid IS NOT NULL AND p.bd_mid IS NOT NULL
), b2 AS (
  SELECT patient_id, k1, k2, by0 AS by_, ref, ry,
    {mid} THEN bm_first ELSE bm_mid END AS bm, {mid} THEN bd_first ELSE bd_mid END AS bd FROM b1
), b3 AS (
  SELECT *, ry - by_ - CASE WHEN {_anniversary('ry')} > ref THEN 1 ELSE 0 END AS years FROM b2
), b4 AS (
  SELECT *, {_date_text('by_', 'bm', 'bd')} AS born, {_anniversary('by_ + years')} AS last_day,
    {_anniversary('by_ + years + 1')} AS next_day FROM b3
), b5 AS (
  SELECT *, {_days(d, 'born')} AS d_born, {_days(d, 'ref')} AS d_ref, {_days(d, 'last_day')} AS d_last,
    {_days(d, 'next_day')} AS d_next FROM b4
), ages AS (
  SELECT patient_id, k1, k2, CASE WHEN d_born IS NULL THEN 'birth date ' || born || ' is not a date'
    WHEN years < 0 THEN 'birth date ' || born || ' is after the latest record ' || ref
    ELSE CAST(years AS STRING) || '.' || lpad(CAST({frac} AS STRING), 6, '0') END AS age FROM b5
), facts AS (
  SELECT patient_id, {null} AS time, 'age_years' AS code, age AS value, {null} AS unit, {null} AS comparator,
    0 AS part, k1, k2, 0 AS k3 FROM ages
  UNION ALL
  SELECT patient_id, {null}, 'sex', sex, {null}, {null}, 0, k1, k2, 1 FROM persons
  UNION ALL
  SELECT m.patient_id, m.time,
    CASE WHEN mc.vocab = 'LOINC' THEN 'LOINC:' || mc.ccode
         WHEN {d.full_match('m.source', '[0-9]+-[0-9]')} THEN 'LOINC:' || m.source
         WHEN mc.vocab = 'SNOMED' THEN 'SCTID:' || mc.ccode
         ELSE COALESCE(m.source, 'OMOP:' || m.concept_text) END,
    m.value, COALESCE(uc.ccode, m.unit_source), m.comparator, 1, m.k1, m.k2, 0
  FROM meas m LEFT JOIN codes mc ON mc.cid = m.concept LEFT JOIN units uc ON uc.cid = m.unit_concept
  UNION ALL
  SELECT c.patient_id, c.time,
    CASE WHEN cc.vocab = 'SNOMED' THEN 'SCTID:' || cc.ccode ELSE COALESCE(c.source, 'OMOP:' || c.concept_text) END,
    'confirmed', {null}, {null}, 2, c.k1, c.k2, 0
  FROM cond c LEFT JOIN codes cc ON cc.cid = c.concept
)
SELECT patient_id, time, code, value, unit, comparator, {null} AS site, {null} AS gene, {null} AS agent,
  CAST(row_number() OVER (ORDER BY part, k1 NULLS LAST, k2 NULLS LAST, k3, time NULLS FIRST, code NULLS FIRST,
    value NULLS FIRST, unit NULLS FIRST, comparator NULLS FIRST) - 1 AS BIGINT) AS row_no
FROM facts"""
