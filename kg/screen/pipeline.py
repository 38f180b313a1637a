"""The screen as SQL views: input -> normalised observations -> state per time point -> verdicts.

Data flows one way, each step a view or, where read more than once, a stored table:

``src``         the long format, trimmed, one row per input row with its file position ``row_no``;
``dict_time``,  each distinct time and value text parsed once (a cohort repeats them: the 10 M-row
``dict_value``  bench holds 8 thousand times and 215 thousand values; parsing them per row took
                nearly half of the time ``obs`` took);
``obs``         every row classified (lab, finding, condition, age, sex, therapy) or given its
                rejection reason, exactly as :func:`kg.patient.read_patient` would; lab values
                converted exactly into each unit a criterion reads (integer factors from
                :mod:`kg.screen.dictionary`);
``state``       one row per patient and time point (each distinct observation time; one untimed row
                for a patient without any), with, per lab test and per (finding, site, gene), the
                observation in force: latest at or before the time point, within the look-back
                window, untimed observations as background facts, ties to the later row
                (semantics 8, :func:`kg.findings.select_at`).  Only row numbers are pivoted and
                carried forward; each observation in force is then joined by its row number
                (a pivot of the values themselves, with their wide aggregate states, was the
                costliest step of all);
``result``      the columns of :class:`kg.screen.compiler.CriteriaCompiler`.
"""

from __future__ import annotations

from datetime import timedelta

from ..errors import InputError
from .backend import Backend
from .compiler import CriteriaCompiler, FindingKey, SlotPlan
from .dictionary import AGE, CONDITION_STATUSES, SEX, SEXES

__all__ = ["LONG_COLUMNS", "REQUIRED", "source_view", "observations_view", "result_query", "TIME_PATTERN"]

REQUIRED = ("patient_id", "time", "code", "value", "unit")
LONG_COLUMNS = REQUIRED + ("comparator", "site", "gene", "agent")
TIME_PATTERN = ("^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?"
                "([Zz]|[+-][0-9]{2}:[0-9]{2})?$")
_NUMBER = "^(<=|>=|<|>)?[ ]*([+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?)$"
_EXACT = "^[+-]?([0-9]{1,12}([.][0-9]{0,9})?|[.][0-9]{1,9})$"
_PLAIN = "^[0-9]{1,12}([.][0-9]{1,9})?$"
_TRUE = ("true", "yes", "present", "1", "y")
_FALSE = ("false", "no", "absent", "0", "n")
_TYPES = {"patient_id": ("string", "integer"), "time": ("string", "timestamp", "date"),
          "value": ("string", "integer", "decimal", "double")}


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def source_view(backend: Backend, table: str, columns: list[str], *, where: str) -> None:
    """``src``: check the table's columns and types (errors name the column), trim, NULL for empty."""
    unknown = [c for c in columns if c not in LONG_COLUMNS]
    if unknown:
        raise InputError(f"unknown column {unknown[0]!r} (expected {', '.join(LONG_COLUMNS)})", where=where)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r}", where=where)
    types = backend.column_types(table)
    for name in LONG_COLUMNS:
        if name in columns and types.get(name) not in _TYPES.get(name, ("string",)):
            allowed = " or ".join(_TYPES.get(name, ("string",)))
            raise InputError(f"column {name!r} is of type {types.get(name)}, expected {allowed}", where=where)

    def text(name: str) -> str:
        t = backend.dialect.text
        return f"NULLIF(trim(CAST({name} AS {t})), '')" if name in columns else f"CAST(NULL AS {t})"

    backend.create_view("src", f"""
        SELECT row_no, {text('patient_id')} AS pid, {text('time')} AS time_text, {text('code')} AS code,
               lower({text('code')}) AS code_key, {text('value')} AS val, {text('unit')} AS unit,
               {text('comparator')} AS cmp_col, {text('site')} AS site, {text('gene')} AS gene,
               {text('agent')} AS agent
        FROM {table}""")


def observations_view(backend: Backend, plan: SlotPlan, width: int, *, latest_us: int) -> None:
    """``obs``: each row classified with its reason (NULL when used), its time and its exact values.

    ``latest_us``: the latest plausible result time (:func:`kg.patient.latest_plausible_time`) in
    microseconds since 1970; an observation timed later is rejected as in the future.
    """
    d = backend.dialect
    plain = d.full_match("val", _PLAIN)  # the common case, one cheap test: a plain decimal
    number = f"(CASE WHEN {plain} THEN val ELSE {d.extract('val', _NUMBER, 2)} END)"
    prefix = f"(CASE WHEN {plain} THEN '' ELSE {d.extract('val', _NUMBER, 1)} END)"
    cmp = ("(CASE WHEN cmp_col IS NOT NULL AND dv.prefix <> '' AND cmp_col <> dv.prefix "
           "THEN cmp_col || ' and ' || dv.prefix ELSE coalesce(cmp_col, NULLIF(dv.prefix, '')) END)")
    is_bool = f"lower(val) IN {_in(_TRUE + _FALSE)}"
    exact = f"TRY_CAST(CASE WHEN {plain} OR {d.full_match(number, _EXACT)} THEN {number} END AS DECIMAL(21,9))"
    not_number = "'value ' || chr(39) || val || chr(39) || ' is not a finite number'"
    too_fine = ("'value ' || chr(39) || val || chr(39) || ' needs more than 12 digits, 9 decimals or an exponent: "
                "beyond what the screen reads exactly (use mas-kg explain)'")
    scaled = ", ".join(f"c.num * c.a{i} + c.b{i} AS v{i}" for i in range(1, width + 1))  # NULL: not convertible
    # each distinct time and value text is parsed once, then joined like the other dictionaries
    backend.materialize("dict_time", f"""
        SELECT time_text, CASE WHEN time_text LIKE '____-__-__T__:__:__Z' OR {d.full_match('time_text', TIME_PATTERN)}
                               THEN {d.epoch_us('time_text')} END AS ts
        FROM (SELECT DISTINCT time_text FROM src WHERE time_text IS NOT NULL) t""")
    age = f"CASE WHEN {d.full_match('val', _EXACT)} THEN TRY_CAST(val AS DECIMAL(21,9)) END"
    backend.materialize("dict_value", f"""
        SELECT val, {number} AS number_text, {exact} AS num, {prefix} AS prefix, {is_bool} AS is_bool,
               lower(val) IN {_in(_TRUE)} AS is_true,
               {age} AS age_value
        FROM (SELECT DISTINCT val FROM src WHERE val IS NOT NULL) v""")
    backend.create_view("parsed", f"""
        SELECT s.*, c.kind, c.term, c.test, c.notation, c.code_reason, c.temperature, c.size_unit,
               u.unit_reason, u.size_factor, u.cel_a, u.cel_b, u.cel_lo, u.cel_hi, u.max_p, u.max_q, u.max_reason,
               st.site_term, k.fk, t.ts, dv.number_text, dv.num, dv.is_bool, dv.is_true,
               dv.age_value, {cmp} AS cmp
               {''.join(f', u.a{i}, u.b{i}' for i in range(1, width + 1))}
        FROM src s
        LEFT JOIN dict_code c ON c.code_key = s.code_key
        LEFT JOIN dict_unit u ON u.code_key = s.code_key AND u.unit_key = coalesce(s.unit, '')
        LEFT JOIN dict_site st ON st.site_key = lower(s.site)
        LEFT JOIN dict_fkey k ON k.code_key = s.code_key AND k.site_key = coalesce(lower(s.site), '')
                             AND k.gene_key = coalesce(upper(s.gene), '')
        LEFT JOIN dict_time t ON t.time_text = s.time_text
        LEFT JOIN dict_value dv ON dv.val = s.val""")
    time_reason = "'unparseable time ' || chr(39) || time_text || chr(39)"
    negative = "num < 0"
    lab_reason = f"""CASE
        WHEN val IS NULL THEN notation || ' needs a value and a unit'
        WHEN number_text = '' THEN {not_number}
        WHEN num IS NULL THEN {too_fine}
        WHEN cmp IS NOT NULL AND cmp NOT IN ('<', '<=', '>=', '>')
             THEN 'comparator ' || chr(39) || cmp || chr(39) || ' is not one of <, <=, >=, >'
        WHEN unit_reason IS NOT NULL THEN unit_reason
        WHEN {negative} AND NOT temperature THEN 'negative value for ' || notation
        WHEN cmp = '<' AND num = 0 AND NOT temperature THEN 'comparator ' || chr(39) || '<' || chr(39) || ' 0 allows no value for ' || notation
        WHEN max_p IS NOT NULL AND num * max_q > max_p THEN 'impossible value ' || val || ' ' || coalesce(unit, '') || ' ' || max_reason
        WHEN temperature AND NOT (num * cel_a + cel_b BETWEEN cel_lo AND cel_hi)
             THEN 'impossible body temperature for ' || notation
        END"""
    finding_reason = f"""CASE
        WHEN val IS NOT NULL AND NOT is_bool AND cmp IS NOT NULL THEN 'a comparator is meaningless on a clinical finding'
        WHEN val IS NOT NULL AND NOT is_bool AND size_unit IS NULL THEN notation || ' takes no value'
        WHEN val IS NOT NULL AND NOT is_bool AND number_text = '' THEN {not_number}
        WHEN val IS NOT NULL AND NOT is_bool AND num IS NULL THEN {too_fine}
        WHEN val IS NOT NULL AND NOT is_bool AND {negative} THEN 'negative size'
        WHEN val IS NOT NULL AND NOT is_bool AND unit_reason IS NOT NULL THEN unit_reason
        WHEN site IS NOT NULL AND site_term IS NULL THEN 'unknown site ' || chr(39) || site || chr(39)
        END"""
    valid_age = "age_value BETWEEN 0 AND 130"
    valid_sex = f"lower(val) IN {_in(SEXES)}"
    # a second, different age or sex rejects the row: counted first over the few rows that give one
    backend.materialize("patient_level", f"""
        SELECT pid, count(DISTINCT age_value) FILTER (WHERE kind = 'age_years' AND {valid_age}) AS ages,
               count(DISTINCT lower(val)) FILTER (WHERE kind = 'sex' AND {valid_sex}) AS sexes
        FROM parsed WHERE kind IN ('age_years', 'sex') AND pid IS NOT NULL GROUP BY pid""")
    backend.materialize("obs", f"""
        WITH classified AS (
          SELECT p.*,
            CASE
              WHEN pid IS NULL THEN 'empty patient_id'
              WHEN code IS NULL THEN 'missing code'
              WHEN kind = 'age_years' AND age_value IS NULL
                   THEN '{AGE} ' || chr(39) || coalesce(val, '') || chr(39) || ' is not a number'
              WHEN kind = 'age_years' AND NOT ({valid_age}) THEN '{AGE} ' || val || ' is impossible'
              WHEN kind = 'sex' AND (val IS NULL OR NOT ({valid_sex}))
                   THEN 'sex must be female, male, other or unknown, not ' || chr(39) || coalesce(val, '') || chr(39)
              WHEN kind IN ('age_years', 'sex', 'condition') THEN NULL
              WHEN code_reason IS NOT NULL THEN code_reason
              WHEN kind = 'therapy' THEN CASE WHEN time_text IS NOT NULL AND ts IS NULL THEN {time_reason} END
              WHEN time_text IS NOT NULL AND ts IS NULL THEN {time_reason}
              WHEN ts > {latest_us} THEN 'time ' || chr(39) || time_text || chr(39) || ' is in the future'
              WHEN kind = 'lab' THEN {lab_reason}
              WHEN kind = 'finding' THEN {finding_reason}
            END AS early_reason
          FROM parsed p)
        SELECT c.row_no, c.pid, c.code_key,
               -- a condition neither confirmed nor suspected is ignored, as read_patient notes it (not an observation)
               CASE WHEN c.kind = 'condition' AND lower(coalesce(c.val, 'confirmed')) NOT IN {_in(CONDITION_STATUSES)}
                    THEN 'ignored' ELSE c.kind END AS kind, c.ts, c.agent, c.age_value,
               CASE
                 WHEN c.early_reason IS NOT NULL THEN c.early_reason
                 WHEN c.kind = 'age_years' AND l.ages > 1 THEN 'a second, different {AGE} for this patient'
                 WHEN c.kind = 'sex' AND l.sexes > 1 THEN 'a second, different {SEX} for this patient'
               END AS reason,
               CASE WHEN c.kind = 'lab' THEN c.test WHEN c.kind = 'finding' THEN {len(plan.tests)} + c.fk END AS key,
               coalesce(c.cmp, ' ') AS cmp,
               CASE WHEN c.kind = 'finding' THEN
                 (CASE WHEN c.val IS NULL OR NOT c.is_bool THEN TRUE ELSE c.is_true END) END AS present,
               CASE WHEN c.kind = 'finding' AND NOT c.is_bool THEN c.num * c.size_factor END AS size,
               {scaled}
        FROM classified c LEFT JOIN patient_level l ON l.pid = c.pid AND c.kind IN ('age_years', 'sex')""")


def result_query(backend: Backend, compiler: CriteriaCompiler, plan: SlotPlan, keys: list[FindingKey],
                 populations: list[str], *, window: timedelta | None) -> str:
    """The SELECT giving one row per patient and time point with every criterion's columns.

    An engine that inlines stacked projections into one (Spark's optimiser does)
    gets the steps as stored relations instead (``backend.staged``): the state and
    each layer of criterion columns are materialised in turn, so no expression is
    ever expanded into its parts' expressions.
    """
    d = backend.dialect
    fields = {f"lab{t}": (t, ["cmp"] + [f"v{s.index}" for s in plan.of_test(term)])
              for t, term in enumerate(plan.tests)}
    fields.update({k.column: (len(plan.tests) + k.index, ["present", "size"]) for k in keys})
    # only row numbers are pivoted and carried forward; the observations in force are joined by them
    pivots = ", ".join(f"max(row_no) FILTER (WHERE key = {key}) AS {k}_rn" for k, (key, _) in fields.items())
    w = "PARTITION BY pid ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    carried = ", ".join(f"{k}_rn, {d.last_ignore_nulls(f'{k}_rn')} OVER ({w}) AS f_{k}_rn" for k in fields)
    untimed = ", ".join(f"{k}_rn AS u_{k}_rn" for k in fields)
    # which observation is in force: the untimed one (a background fact) unless a later row at exactly
    # this time point, else the latest timed one (its freshness is checked once joined)
    picks = ", ".join(f"CASE WHEN u.u_{k}_rn IS NOT NULL AND (t.{k}_rn IS NULL OR t.{k}_rn < u.u_{k}_rn) "
                      f"THEN u.u_{k}_rn ELSE t.f_{k}_rn END AS pick_{k}" for k in fields)
    pop_columns = "".join(f", p.pop{i}" for i in range(len(populations)))
    pop_flags = "".join(
        f", coalesce(bool_or(dc.pop{i}) FILTER (WHERE o.kind = 'condition' AND o.reason IS NULL), FALSE) AS pop{i}"
        for i in range(len(populations)))
    joins, values = [], []
    for k, (key, columns) in fields.items():
        joins.append(f"LEFT JOIN (SELECT row_no, ts, {', '.join(columns)} FROM obs WHERE reason IS NULL AND key = {key}) "
                     f"j_{k} ON j_{k}.row_no = c.pick_{k}")
        fresh = "TRUE" if window is None else \
            f"(j_{k}.ts IS NULL OR j_{k}.ts >= c.ts - {int(window.total_seconds() * 10**6)})"
        values += [f"CASE WHEN {fresh} THEN j_{k}.{col} END AS {k}_{'rn' if col == 'row_no' else col}"
                   for col in ["row_no"] + columns]
    sql = [f"""
      grouped AS (SELECT pid, ts, {pivots} FROM obs WHERE reason IS NULL AND kind IN ('lab', 'finding')
                  GROUP BY pid, ts),
      timed AS (SELECT pid, ts, {carried} FROM grouped WHERE ts IS NOT NULL),
      untimed AS (SELECT pid, {untimed} FROM grouped WHERE ts IS NULL),
      patients AS (
        SELECT o.pid, max(o.age_value) FILTER (WHERE o.kind = 'age_years' AND o.reason IS NULL) AS age{pop_flags}
        FROM obs o LEFT JOIN dict_cond dc ON dc.code_key = o.code_key AND dc.agent_key = coalesce(lower(o.agent), '')
        WHERE o.pid IS NOT NULL GROUP BY o.pid),
      chosen AS (
        SELECT p.pid, p.age{pop_columns}, t.ts, {picks}
        FROM patients p LEFT JOIN timed t ON t.pid = p.pid LEFT JOIN untimed u ON u.pid = p.pid),
      state AS (SELECT c.pid, c.ts, c.age{pop_columns.replace('p.', 'c.')}, {', '.join(values)} FROM chosen c {' '.join(joins)})"""]
    layers = ["state"]
    for i, layer in enumerate(compiler.layers()):
        if layer:
            sql.append(f"layer{i} AS (SELECT *, {', '.join(f'{expr} AS {col}' for col, expr in layer)} "
                       f"FROM {layers[-1]})")
            layers.append(f"layer{i}")
    outputs = ", ".join(col for col, _ in compiler.outputs())
    final = (f"SELECT pid AS patient_id, CASE WHEN ts IS NOT NULL THEN {d.iso('ts')} END AS time, {outputs} "
             f"FROM {layers[-1]} ORDER BY pid, ts NULLS FIRST")
    if not backend.staged:
        return "WITH " + ",\n".join(sql) + "\n" + final
    steps = [part.strip().split(" AS (", 1) for part in sql[0].split("),\n      ")] + \
        [part.split(" AS (", 1) for part in sql[1:]]
    for i, (name, body) in enumerate(steps):
        body = body.rstrip().removesuffix(")")
        # an item reads parts at most three layers up (compiler: three layers per depth): storing every
        # third layer bounds any inlining to one item's own steps
        if name.strip() == "state" or (name.startswith("layer") and (i % 3 == 0 or i == len(steps) - 1)):
            backend.materialize(name.strip(), body)
        else:
            backend.create_view(name.strip(), body)
    return final
