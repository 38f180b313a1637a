"""Cohort screen throughput: `kg.screen.screen` against a hand-written DuckDB query and looped `explain`.

Run: python bench/screen.py [--rows 10000000] [--explain-patients 200] [--seed 0]

The cohort (kg.screen.synthetic.write_bulk_parquet) is cached in bench/.data/ (git-ignored by the
.gitignore this script writes there).  Measured in the same run, as every bench here:

(a) ``screen(..., engine="duckdb")``: all 12 criteria sets, and only hlh2004 + mas2016 (``criteria=``,
    like for like with the baseline), best of 2 each;
(b) the baseline: hlh2004 and mas2016 only, written by hand below in plain DuckDB SQL with the same
    semantics (latest value per code within 72 h, untimed facts, ties to the later row, exact unit
    conversion by integer cross-multiplication, censored values, three-valued verdicts, score and
    range), the same output shape, best of 2 -- and its agreement with the screen's columns;
(c) ``engine.explain`` looped over a sample of patients at every evaluation time point.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kg.screen.synthetic import write_bulk_parquet  # noqa: E402

DATA = ROOT / "bench" / ".data"

# (code, unit) -> value_in_base = value * num / den; num NULL: usable but not comparable (sCD25 pg/mL).
# Bases: ferritin ng/mL, Hb g/L, counts 10*9/L, TG mg/dL, fibrinogen g/L, AST U/L, sCD25 U/mL.
UNITS = """(VALUES
 ('ferritin','ng/mL',1,1), ('ferritin','ug/L',1,1), ('ferritin','pmol/L',1000,2247), ('ferritin','ng/L',1,1000),
 ('hemoglobin','g/L',1,1), ('hemoglobin','g/dL',10,1), ('hemoglobin','mmol/L',50000,3103),
 ('platelets','10*9/L',1,1), ('platelets','G/L',1,1), ('platelets','K/uL',1,1), ('platelets','/uL',1,1000),
 ('neutrophils','10*9/L',1,1), ('neutrophils','G/L',1,1), ('neutrophils','K/uL',1,1), ('neutrophils','/uL',1,1000),
 ('leukocytes','10*9/L',1,1), ('leukocytes','G/L',1,1), ('leukocytes','K/uL',1,1), ('leukocytes','/uL',1,1000),
 ('triglycerides','mg/dL',1,1), ('triglycerides','mmol/L',8857,100), ('triglycerides','g/L',100,1),
 ('fibrinogen','g/L',1,1), ('fibrinogen','mg/dL',1,100), ('fibrinogen','umol/L',34,100),
 ('ast','U/L',1,1), ('ast','IU/L',1,1), ('ast','ukat/L',60,1), ('alt','U/L',1,1), ('ldh','U/L',1,1),
 ('d-dimer','mg/L',1,1), ('d-dimer','ug/L',1,1000), ('esr','mm/h',1,1), ('crp','mg/L',1,1),
 ('scd25','U/mL',1,1), ('scd25','pg/mL',NULL,1), ('albumin','g/dL',1,1), ('albumin','g/L',1,10),
 ('temperature','Cel',1,1), ('temperature','[degF]',1,1)) AS u(code, unit, num, den)"""
FINDINGS = ("fever", "splenomegaly", "hepatomegaly", "hemophagocytosis", "nk-activity-low",
            "hlh-molecular-diagnosis", "hemorrhage", "cns-dysfunction", "active-arthritis", "proteinuria",
            "lymphadenopathy", "rash", "immunosuppression")
CONDITIONS = ("sjia", "aosd", "sle", "kawasaki", "malignancy", "sepsis", "infection")
# Each atom is one three-valued test on one observation (x: value in the given unit x num, d: den,
# c: comparator), evaluated per row into two bit masks (certainly true, certainly false), so that the
# state of a time point is a bit_or over the observations in force.  The bit is the atom's position.
ATOMS = (
    ("fer500", "ferritin", "ge(x, c, 500 * d)"), ("fer684", "ferritin", "gt(x, c, 684 * d)"),
    ("hb90", "hemoglobin", "lt(x, c, 90 * d)"), ("hb100", "hemoglobin", "lt(x, c, 100 * d)"),
    ("plt100", "platelets", "lt(x, c, 100 * d)"), ("plt181", "platelets", "le(x, c, 181 * d)"),
    ("anc", "neutrophils", "lt(x, c, 1.0 * d)"),
    ("tg3", "triglycerides", "ge(x, c, 265.71 * d)"),  # 3.0 mmol/L = 265.71 mg/dL exactly (x 88.57)
    ("tg156", "triglycerides", "gt(x, c, 156 * d)"),
    ("fib15", "fibrinogen", "le(x, c, 1.5 * d)"), ("fib36", "fibrinogen", "le(x, c, 3.6 * d)"),  # 360 mg/dL
    ("ast48", "ast", "gt(x, c, 48 * d)"), ("scd25", "scd25", "ge(x, c, 2400 * d)"),
    ("temp", "temperature", "ge(x, c, CASE unit WHEN 'Cel' THEN 38 ELSE 100.4 END)"),  # 100.4 [degF] = 38 Cel
    ("fever_f", "fever", "present"), ("spleno", "splenomegaly", "present"),
    ("hemo", "hemophagocytosis", "CASE WHEN present AND (site IS NULL OR site IN ('bone-marrow', 'spleen', "
                                 "'lymph-node')) THEN true WHEN NOT present THEN false END"),
    ("nk", "nk-activity-low", "present"), ("molecular", "hlh-molecular-diagnosis", "present"),
)
NEEDED = tuple(dict.fromkeys(code for _, code, _ in ATOMS))
HLH = ("fever", "spleno", "CASE WHEN (hb IS TRUE)::INT + (plt100 IS TRUE)::INT + (anc IS TRUE)::INT >= 2 THEN true "
       "WHEN (hb IS NOT FALSE)::INT + (plt100 IS NOT FALSE)::INT + (anc IS NOT FALSE)::INT < 2 THEN false END",
       "(tg3 OR fib15)", "hemo", "nk", "fer500", "scd25")  # the 8 HLH-2004 criteria
MAS = ("plt181", "ast48", "tg156", "fib36")  # the 2016 "any two of"


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


MACROS = """
CREATE OR REPLACE MACRO ge(v, c, t) AS CASE WHEN v IS NULL THEN NULL WHEN c IS NULL THEN v >= t
  WHEN c IN ('>', '>=') THEN CASE WHEN v >= t THEN true END ELSE CASE WHEN v < t OR (v = t AND c = '<') THEN false END END;
CREATE OR REPLACE MACRO gt(v, c, t) AS CASE WHEN v IS NULL THEN NULL WHEN c IS NULL THEN v > t
  WHEN c IN ('>', '>=') THEN CASE WHEN v > t OR (v = t AND c = '>') THEN true END ELSE CASE WHEN v <= t THEN false END END;
CREATE OR REPLACE MACRO lt(v, c, t) AS CASE WHEN v IS NULL THEN NULL WHEN c IS NULL THEN v < t
  WHEN c IN ('>', '>=') THEN CASE WHEN v >= t THEN false END ELSE CASE WHEN v < t OR (v = t AND c = '<') THEN true END END;
CREATE OR REPLACE MACRO le(v, c, t) AS CASE WHEN v IS NULL THEN NULL WHEN c IS NULL THEN v <= t
  WHEN c IN ('>', '>=') THEN CASE WHEN v > t OR (v = t AND c = '>') THEN false END ELSE CASE WHEN v <= t THEN true END END;
CREATE OR REPLACE MACRO bits(test, i) AS CASE WHEN test THEN 1::BIGINT << i WHEN NOT test THEN 1::BIGINT << (i + 32)
  ELSE 0 END;
CREATE OR REPLACE MACRO atom(m, i) AS CASE WHEN (m >> i) & 1 = 1 THEN true WHEN (m >> (i + 32)) & 1 = 1 THEN false END;
CREATE OR REPLACE MACRO status(r) AS CASE WHEN r THEN 'met' WHEN NOT r THEN 'not_met' ELSE 'indeterminate' END;
"""


def _row_bits() -> str:
    """The bit masks of one observation: a CASE on its code adding its atoms' bits."""
    whens = []
    for code in NEEDED:
        terms = " + ".join(f"bits({test}, {i})" for i, (_, c, test) in enumerate(ATOMS) if c == code)
        whens.append(f"WHEN '{code}' THEN {terms}")
    return "CASE code " + " ".join(whens) + " ELSE 0 END"


def baseline(db: duckdb.DuckDBPyConnection, source: Path, out: Path, window_hours: int = 72) -> int:
    """hlh2004 and mas2016 for every patient and time point, written to ``out`` (Parquet)."""
    number = r"[0-9]{1,12}([.][0-9]{0,9})?|[.][0-9]{1,9}"
    window = window_hours * 3600 * 1_000_000
    db.execute(MACROS)
    db.execute(f"""CREATE OR REPLACE TEMP TABLE b_obs AS
    WITH s AS (
      SELECT file_row_number AS row_no, patient_id AS pid, NULLIF(time, '') AS tt, lower(code) AS code,
             NULLIF(value, '') AS val, NULLIF(unit, '') AS unit, NULLIF(comparator, '') AS ccol,
             lower(NULLIF(site, '')) AS site, upper(NULLIF(gene, '')) AS gene,
             CASE WHEN value[1] IN ('<', '>') THEN CASE WHEN value[2] = '=' THEN value[1:2] ELSE value[1] END
             END AS vcmp
      FROM read_parquet('{source}', file_row_number = true)),
    p AS (
      SELECT *, ltrim(val[length(coalesce(vcmp, '')) + 1:]) AS digits,
             CASE WHEN regexp_full_match(tt, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}(T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}Z)?')
                  THEN epoch_us(TRY_CAST(tt AS TIMESTAMPTZ)) END AS ts
      FROM s),
    q AS (
      SELECT p.*, u.code IS NOT NULL AS is_lab, u.num * CASE WHEN regexp_full_match(digits, '{number}')
             THEN CAST(digits AS DECIMAL(38, 9)) END AS x, u.den AS d, coalesce(ccol, vcmp) AS c,
             (u.code IS NOT NULL AND regexp_full_match(digits, '{number}')) AS is_number,
             lower(val) IN ('true', 'yes', 'present', '1', 'y') AS present
      FROM p LEFT JOIN {UNITS} ON u.code = p.code AND u.unit = p.unit)
    SELECT row_no, pid, ts, code, val,
      CASE WHEN is_lab THEN 'lab' WHEN code IN {_in(FINDINGS)} THEN 'finding'
           WHEN code IN {_in(CONDITIONS)} THEN 'condition' WHEN code IN ('age_years', 'sex') THEN 'patient'
      END AS kind,
      CASE WHEN code NOT IN {_in(NEEDED)} THEN NULL WHEN is_lab THEN code
           ELSE code || '|' || coalesce(site, '') || '|' || coalesce(gene, '') END AS k,
      CASE WHEN tt IS NOT NULL AND ts IS NULL THEN false
           WHEN is_lab THEN is_number AND (ccol IS NULL OR vcmp IS NULL OR ccol = vcmp)
                AND coalesce(ccol, '>') IN ('<', '<=', '>=', '>')
                AND (code <> 'temperature' OR (unit = 'Cel' AND x BETWEEN 20 AND 46)
                     OR (unit = '[degF]' AND x BETWEEN 68 AND 114.8))
           WHEN code IN {_in(FINDINGS)} THEN ccol IS NULL
                AND lower(val) IN ('true', 'yes', 'present', '1', 'y', 'false', 'no', 'absent', '0', 'n')
                AND (site IS NULL OR site IN ('bone-marrow', 'spleen', 'lymph-node', 'liver'))
           ELSE false END AS usable,
      CASE WHEN code IN {_in(NEEDED)} THEN {_row_bits()} END AS bits
    FROM q""")
    atoms = ",\n        ".join(f"atom(m, {i}) AS {name}" for i, (name, _, _) in enumerate(ATOMS))
    db.execute(f"""CREATE OR REPLACE TEMP TABLE b_out AS
    WITH ob AS (SELECT pid, ts, row_no, k, bits FROM b_obs WHERE usable AND kind IN ('lab', 'finding')),
    pat AS (SELECT pid, max(TRY_CAST(val AS DECIMAL(18, 9))) FILTER (WHERE code = 'age_years') AS age,
                   coalesce(bool_or(code = 'sjia' AND coalesce(lower(val), 'confirmed') IN ('confirmed', 'suspected')),
                            false) AS sjia
            FROM b_obs GROUP BY pid),
    timed AS (SELECT DISTINCT pid, ts AS evt FROM ob WHERE ts IS NOT NULL),
    tp AS (SELECT * FROM timed UNION ALL SELECT pid, NULL FROM pat WHERE pid NOT IN (SELECT pid FROM timed)),
    need AS (SELECT * FROM ob WHERE bits IS NOT NULL),
    keys AS (SELECT DISTINCT pid, k FROM need),
    last_timed AS (SELECT pid, k, ts, max(row_no) AS row_no, arg_max(bits, row_no) AS bits
                   FROM need WHERE ts IS NOT NULL GROUP BY ALL),
    last_untimed AS (SELECT pid, k, max(row_no) AS row_no, arg_max(bits, row_no) AS bits
                     FROM need WHERE ts IS NULL GROUP BY ALL),
    chosen AS (
      SELECT g.pid, g.evt,
        CASE WHEN u.row_no IS NOT NULL AND NOT coalesce(a.ts = g.evt AND a.row_no > u.row_no, false) THEN u.bits
             WHEN a.ts >= g.evt - {window} THEN a.bits END AS bits
      FROM (SELECT tp.pid, tp.evt, keys.k FROM tp JOIN keys USING (pid)) g
      ASOF LEFT JOIN last_timed a ON g.pid = a.pid AND g.k = a.k AND g.evt >= a.ts
      LEFT JOIN last_untimed u ON g.pid = u.pid AND g.k = u.k),
    state AS (SELECT tp.pid, tp.evt, coalesce(bit_or(c.bits), 0) AS m
              FROM tp LEFT JOIN chosen c ON c.pid = tp.pid AND c.evt IS NOT DISTINCT FROM tp.evt GROUP BY ALL),
    a AS (SELECT state.pid, state.evt, pat.age, pat.sjia,
        {atoms}
      FROM state JOIN pat USING (pid)),
    items AS (
      SELECT *,
        CASE WHEN fever_f OR temp THEN true WHEN NOT fever_f OR NOT temp THEN false END AS fever,
        CASE WHEN age IS NULL THEN CASE WHEN hb90 IS NOT DISTINCT FROM hb100 THEN hb90 END
             WHEN age * 365.25 < 28 THEN hb100 ELSE hb90 END AS hb
      FROM a),
    counted AS (
      SELECT *,
        {" + ".join(f"({x} IS TRUE)::INT" for x in HLH)} AS h_met,
        {" + ".join(f"({x} IS NOT FALSE)::INT" for x in HLH)} AS h_max,
        {" + ".join(f"({x} IS TRUE)::INT" for x in MAS)} AS m_met,
        {" + ".join(f"({x} IS NOT FALSE)::INT" for x in MAS)} AS m_max
      FROM items)
    SELECT pid AS patient_id, strftime(make_timestamp(evt), '%Y-%m-%dT%H:%M:%SZ') AS time,
      status(molecular OR CASE WHEN h_met >= 5 THEN true WHEN h_max < 5 THEN false END) AS hlh2004_status,
      h_met::DOUBLE AS hlh2004_score, h_met::DOUBLE AS hlh2004_score_min, h_max::DOUBLE AS hlh2004_score_max,
      CASE WHEN NOT sjia THEN 'not_applicable'
           ELSE status(fever AND fer684 AND CASE WHEN m_met >= 2 THEN true WHEN m_max < 2 THEN false END)
      END AS mas2016_status,
      m_met::DOUBLE AS mas2016_score, m_met::DOUBLE AS mas2016_score_min, m_max::DOUBLE AS mas2016_score_max
    FROM counted""")
    return db.execute(f"COPY b_out TO '{out}' (FORMAT parquet)").fetchone()[0]


COLUMNS = [f"{c}_{s}" for c in ("hlh2004", "mas2016") for s in ("status", "score", "score_min", "score_max")]


def agreement(db: duckdb.DuckDBPyConnection, screened: Path, base: Path) -> tuple[int, int, int]:
    """(rows agreeing on all 8 columns, screen rows, baseline rows)."""
    same = " AND ".join(f"s.{c} IS NOT DISTINCT FROM b.{c}" for c in COLUMNS)
    return db.execute(f"""
        SELECT (SELECT count(*) FROM read_parquet('{screened}') s JOIN read_parquet('{base}') b
                ON s.patient_id = b.patient_id AND s.time IS NOT DISTINCT FROM b.time WHERE {same}),
               (SELECT count(*) FROM read_parquet('{screened}')), (SELECT count(*) FROM read_parquet('{base}'))
        """).fetchone()


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def explain_loop(source: Path, patients: int, seed: int) -> tuple[int, int, float]:
    """(input rows, explain calls, seconds) of ``explain`` at every time point of a sample of patients."""
    import csv
    import io

    import kg
    from kg.csvinput import read_csv

    with duckdb.connect() as db:
        rows = db.execute(f"""
            WITH t AS (SELECT *, file_row_number FROM read_parquet('{source}', file_row_number = true)),
                 chosen AS (SELECT DISTINCT patient_id FROM t ORDER BY hash(patient_id, {seed}) LIMIT {patients})
            SELECT patient_id, time, code, value, unit, comparator, site, gene, agent FROM t
            WHERE patient_id IN (SELECT patient_id FROM chosen) ORDER BY file_row_number""").fetchall()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["patient_id", "time", "code", "value", "unit", "comparator", "site", "gene", "agent"])
    writer.writerows(rows)
    engine = kg.Engine()
    start = time.perf_counter()
    calls = 0
    for patient, _ in read_csv(text.getvalue(), engine.kb):
        for at in sorted({o.time for o in patient.observations if o.time is not None}) or [None]:
            engine.explain(patient, at=at)
            calls += 1
    return len(rows), calls, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--explain-patients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / ".gitignore").write_text("*\n")
    source = DATA / f"bulk-v2-{args.rows}-{args.seed}.parquet"  # v2: bump when the generator changes
    if not source.exists():
        start = time.perf_counter()
        write_bulk_parquet(source, args.rows, seed=args.seed)
        print(f"generated {source.relative_to(ROOT)} in {time.perf_counter() - start:.1f} s")
    with duckdb.connect() as db:
        rows, patients = db.execute(f"SELECT count(*), count(DISTINCT patient_id) FROM read_parquet('{source}')").fetchone()
    print(f"cohort: {rows:,} rows, {patients:,} patients")

    from kg.screen import screen

    with tempfile.TemporaryDirectory() as tmp:
        screened, base = Path(tmp) / "screen.parquet", Path(tmp) / "baseline.parquet"
        two = Path(tmp) / "screen-two.parquet"
        summary = None

        def run_screen() -> None:
            nonlocal summary
            summary = screen(str(source), out=str(screened), engine="duckdb")

        t_screen = best_of(2, run_screen)
        t_two = best_of(2, lambda: screen(str(source), out=str(two), engine="duckdb", criteria=["hlh2004", "mas2016"]))

        def run_baseline() -> None:
            with duckdb.connect() as db:
                db.execute("SET TimeZone = 'UTC'")
                baseline(db, source, base)

        t_base = best_of(2, run_baseline)
        with duckdb.connect() as db:
            agree, n_screen, n_base = agreement(db, screened, base)
            agree_two = agreement(db, two, base)[0]
            if agree < max(n_screen, n_base):
                same = " AND ".join(f"s.{c} IS NOT DISTINCT FROM b.{c}" for c in COLUMNS)
                print("first disagreements (screen | baseline):")
                for row in db.execute(f"""SELECT s.patient_id, s.time, {', '.join('s.' + c for c in COLUMNS)}, '|',
                        {', '.join('b.' + c for c in COLUMNS)} FROM read_parquet('{screened}') s
                        FULL JOIN read_parquet('{base}') b ON s.patient_id = b.patient_id
                        AND s.time IS NOT DISTINCT FROM b.time WHERE NOT coalesce({same}, false) LIMIT 5""").fetchall():
                    print("  ", row)
    sample_rows, calls, t_explain = explain_loop(source, args.explain_patients, args.seed)
    explain_rate = sample_rows / t_explain
    t_explain_all = rows / explain_rate
    print(f"evaluation rows: {summary.evaluation_rows:,}; rejected input rows: {sum(summary.rejected.values()):,}")
    print(f"baseline agreement with the screen on hlh2004 + mas2016 (8 columns): {agree:,} of "
          f"{max(n_screen, n_base):,} rows = {100 * agree / max(n_screen, n_base, 1):.3f} % "
          f"(the two-set screen: {agree_two:,})")
    print()
    print(f"{'':44} {'rows':>12} {'seconds':>9} {'rows/s':>12} {'ratio':>8}")
    print(f"{'screen, duckdb, 12 criteria sets (best of 2)':44} {rows:>12,} {t_screen:>9.2f} "
          f"{rows / t_screen:>12,.0f} {t_screen / t_base:>7.2f}x")
    print(f"{'screen, duckdb, hlh2004 + mas2016 (best of 2)':44} {rows:>12,} {t_two:>9.2f} "
          f"{rows / t_two:>12,.0f} {t_two / t_base:>7.2f}x")
    print(f"{'hand-written SQL, hlh2004 + mas2016 (base)':44} {rows:>12,} {t_base:>9.2f} {rows / t_base:>12,.0f} "
          f"{1:>7.2f}x")
    print(f"{'explain loop, extrapolated':44} {rows:>12,} {t_explain_all:>9.0f} {explain_rate:>12,.0f} "
          f"{t_explain_all / t_base:>7.0f}x")
    print(f"  (explain: {args.explain_patients} patients, {sample_rows:,} rows, {calls:,} calls in {t_explain:.1f} s, "
          f"{1000 * t_explain / max(calls, 1):.0f} ms per call; screen is {t_explain_all / t_screen:,.0f}x faster)")


if __name__ == "__main__":
    main()
