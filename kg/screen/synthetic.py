"""Synthetic cohorts in the long CSV format (:mod:`kg.csvinput`), for tests and benchmarks.

:func:`cohort_rows` is written to exercise every criterion set and every rule of
``reference/semantics.md`` that a cohort can reach: values exactly on each
published cut-off (read from the ontology, so they follow it) in the published
unit and converted exactly into other units where the decimal terminates
(TG 265.71 mg/dL = 3.0 mmol/L, 100.4 [degF] = 38 Cel), values just either side,
censored values (``>20000``, or the ``comparator`` column), mixed unit
spellings, findings with sites, sizes and genes, several time points per
patient spread so that the 72 h look-back window matters (gaps of exactly 72 h
included), untimed background rows, ties (same code, same instant: the later
row wins) and about 3 % bad rows that must be rejected.  It is deterministic
for a seed.  :func:`write_bulk_parquet` makes a large, plainer cohort for
benchmarks in DuckDB SQL (no Python per row).

>>> rows = list(cohort_rows(4, seed=1))
>>> len({r[0] for r in rows}), all(len(r) == len(COLUMNS) for r in rows), rows == list(cohort_rows(4, seed=1))
(4, True, True)
"""

from __future__ import annotations

import csv
import random
import re
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from ..knowledge import load_knowledge
from ..units import convert, normalise_unit

__all__ = ["COLUMNS", "cohort_rows", "write_cohort_csv", "write_bulk_parquet"]

COLUMNS = ("patient_id", "time", "code", "value", "unit", "comparator", "site", "gene", "agent")

# code -> [(unit spelling, weight)]; the first spelling is the unit random values are drawn in.
_UNITS: dict[str, list[tuple[str, int]]] = {
    "ferritin": [("ng/mL", 5), ("ug/L", 3), ("µg/L", 1), ("pmol/L", 2), ("ng/L", 1)],
    "hemoglobin": [("g/L", 4), ("g/dL", 4), ("g/dl", 1), ("mmol/L", 2)],
    "platelets": [("10*9/L", 4), ("/uL", 2), ("K/uL", 2), ("G/L", 1), ("x10^9/L", 1), ("/mm3", 1)],
    "neutrophils": [("10*9/L", 4), ("/uL", 2), ("K/uL", 1), ("G/L", 1), ("cells/uL", 1)],
    "leukocytes": [("10*9/L", 4), ("/uL", 2), ("K/uL", 2), ("G/L", 1)],
    "lymphocytes": [("10*9/L", 2), ("/uL", 1)],
    "triglycerides": [("mg/dL", 4), ("mmol/L", 3), ("g/L", 2), ("mg/dl", 1)],
    "fibrinogen": [("g/L", 4), ("mg/dL", 4), ("umol/L", 1), ("µmol/L", 1)],
    "ast": [("U/L", 5), ("IU/L", 2), ("ukat/L", 2), ("µkat/L", 1)],
    "alt": [("U/L", 3), ("ukat/L", 1)],
    "ldh": [("U/L", 4), ("IU/L", 1), ("ukat/L", 2)],
    "d-dimer": [("mg/L", 4), ("ug/L", 3), ("ug/mL", 1), ("mg/L{FEU}", 1)],
    "esr": [("mm/h", 4), ("mm/hr", 1)],
    "crp": [("mg/L", 3), ("mg/dL", 1)],
    "scd25": [("U/mL", 6), ("kU/L", 1), ("pg/mL", 2)],
    "albumin": [("g/dL", 3), ("g/L", 2)],
    "pt-prolongation": [("s", 3), ("sec", 1)],
    "temperature": [("Cel", 5), ("[degF]", 3), ("°C", 1), ("°F", 1)],
    "sodium": [("mmol/L", 1)],
}
# code -> (normal low, normal high, abnormal low, abnormal high), in the first unit of _UNITS
_RANGES: dict[str, tuple[float, float, float, float]] = {
    "ferritin": (15, 400, 700, 60000), "hemoglobin": (110, 160, 55, 95), "platelets": (160, 450, 8, 120),
    "neutrophils": (1.8, 8, 0.05, 1.2), "leukocytes": (4.5, 13, 0.5, 4.2), "lymphocytes": (1, 4, 0.1, 0.9),
    "triglycerides": (50, 150, 160, 900), "fibrinogen": (2, 4.5, 0.4, 1.9), "ast": (12, 40, 50, 2500),
    "alt": (8, 40, 50, 1500), "ldh": (150, 400, 600, 6000), "d-dimer": (0.1, 0.5, 0.6, 40),
    "esr": (15, 100, 1, 15), "crp": (0.5, 10, 20, 300), "scd25": (300, 2000, 2500, 40000),
    "albumin": (3.5, 5, 1.5, 3), "pt-prolongation": (0, 3, 3.5, 15), "temperature": (36, 37.9, 38, 41),
    "sodium": (135, 145, 120, 134),
}
# the labs a time point may hold, each drawn with the patient's density
_PANEL = ("ferritin", "hemoglobin", "platelets", "neutrophils", "leukocytes", "triglycerides", "fibrinogen",
          "ast", "ldh", "alt", "d-dimer", "esr", "scd25", "albumin", "pt-prolongation", "crp", "lymphocytes",
          "sodium")
_FLAGS = ("nk-activity-low", "cns-dysfunction", "hemorrhage", "active-arthritis", "immunosuppression",
          "proteinuria", "lymphadenopathy", "rash")
_TRUE, _FALSE = ("true", "yes", "present", "1", "TRUE", "y"), ("false", "no", "absent", "0", "FALSE", "n")
_CONDITIONS = (("sJIA", 40), ("AOSD", 8), ("SLE", 10), ("malignancy", 10), ("sepsis", 8), ("infection", 15),
               ("Kawasaki", 3))
_AGES = ("0.05", "0.0766", "0.0767", "0.5", "1.6", "1.61", "3", "7.5", "12", "16", "25", "41", "67")
_GAPS_H = (6, 12, 24, 24, 48, 71, 72, 72, 73, 96, 168)
_BAD = (("ferriton", "700", "ng/mL", ""), ("plateletz", "90", "10*9/L", ""), ("ferritin", "700", "furlong/L", ""),
        ("platelets", "95", "mm/h", ""), ("temperature", "39", "mg/dL", ""), ("ferritin", "-5", "ng/mL", ""),
        ("fibrinogen", "n/a", "g/L", ""), ("ast", "1,000", "U/L", ""), ("hemoglobin", "85", "", ""),
        ("temperature", "50", "Cel", ""), ("ferritin", "700", "ng/mL", "~"), ("fever", "true", "", ">"),
        ("fever", "39", "Cel", ""), ("splenomegaly", "-2", "cm", ""), ("ferritin", ">700", "ng/mL", "<"))
_BAD_TIMES = ("2024-13-45", "yesterday", "2024-02-30", "not a date")


def _cutoffs() -> dict[str, list[tuple[Fraction, str]]]:
    """Every threshold the criteria sets hold, per lab code, with its published unit."""
    kb = load_knowledge()
    out: dict[str, list[tuple[Fraction, str]]] = {}
    for c in kb.criteria:
        for item in c.items.values():
            rules = [(item.analyte, t, item.unit) for t in (item.threshold, (item.age_threshold or (0, None))[1])
                     if item.analyte and t is not None]
            rules += [(item.analyte, b.threshold, item.unit) for b in item.bands if item.analyte]
            if rule := item.measured_rule:
                rules.append((rule.analyte, rule.threshold, rule.unit))
            for analyte, threshold, unit in rules:
                out.setdefault(kb.lab_tests[analyte].notation, []).append((threshold, unit))
    for test in kb.lab_tests.values():
        if test.high_rule:
            out.setdefault(test.notation, []).append((test.high_rule.threshold, test.high_rule.unit))
    for c in kb.criteria:  # ratios: operands whose quotient is the cut-off (ferritin/ESR 645/30 = 21.5)
        for item in c.items.values():
            if item.combination == "ratio":
                num, den = c.items[item.numerator], c.items[item.denominator]  # type: ignore[index]
                for k in (10, 20, 30):
                    out.setdefault(kb.lab_tests[den.analyte].notation, []).append((Fraction(k), den.unit))
                    out[kb.lab_tests[num.analyte].notation].append((k * item.threshold, num.unit))
    return out


def _text(value: Fraction, places: int = 6) -> str:
    """A decimal text without exponent: exact when it terminates within 9 places, else rounded."""
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    exact = den == 1 and max(twos, fives) <= 9
    digits = max(twos, fives) if exact else places
    text = format(Decimal(round(value * 10**digits)).scaleb(-digits), "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


class _Gen:
    def __init__(self, seed: int) -> None:
        kb = load_knowledge()
        self.tests = {code: kb.lab_tests[kb.resolve_code(code).id] for code in _UNITS}  # type: ignore[union-attr]
        self.cut = _cutoffs()
        self.seed = seed
        self.affine: dict[tuple[str, str, str], tuple[Fraction, Fraction] | None] = {}

    def convert(self, code: str, value: Fraction, from_unit: str, to_unit: str) -> Fraction | None:
        """``value`` in ``to_unit``, exactly (kg.units); None when there is no conversion."""
        key = (code, from_unit, to_unit)
        if key not in self.affine:
            test = self.tests[code]
            try:
                pair = [convert(Fraction(x), normalise_unit(from_unit), normalise_unit(to_unit),
                                analyte_kind=test.quantity_kind, molar=test.molar) for x in (0, 1)]
                self.affine[key] = (pair[1] - pair[0], pair[0])
            except ValueError:
                self.affine[key] = None  # e.g. sCD25 U/mL -> pg/mL
        scale_offset = self.affine[key]
        return None if scale_offset is None else value * scale_offset[0] + scale_offset[1]

    def lab_value(self, rng: random.Random, code: str, severity: float) -> tuple[str, str, str]:
        """(value text, unit, comparator column) of one lab result."""
        unit = rng.choices([u for u, _ in _UNITS[code]], [w for _, w in _UNITS[code]])[0]
        base_unit = _UNITS[code][0][0]
        roll = rng.random()
        if code in self.cut and roll < 0.45:
            threshold, t_unit = rng.choice(self.cut[code])
            value = self.convert(code, threshold, t_unit, unit)
            if value is None:
                value, unit = threshold, t_unit
            if roll > 0.3:  # just either side: one unit of the printed precision, or 0.1 %
                step = Fraction(1, 10**max(1, len(_text(value).partition(".")[2])))
                value += rng.choice((-1, 1)) * min(step, max(value / 1000, Fraction(1, 10**6)))
        else:
            nlo, nhi, alo, ahi = _RANGES[code]
            lo, hi = (alo, ahi) if rng.random() < severity else (nlo, nhi)
            drawn = Fraction(round(rng.uniform(lo, hi), 3)).limit_denominator(1000)
            if code == "esr" and rng.random() < 0.08:
                drawn = Fraction(0)  # ferritin/ESR with ESR 0: ratio unbounded
            value = self.convert(code, drawn, base_unit, unit) or drawn
            value = Fraction(round(value * 100), 100) if value > 10 else Fraction(round(value * 10000), 10000)
        if value < 0:
            value = Fraction(0)
        text, comparator = _text(value), ""
        if rng.random() < 0.02:  # other spellings of the same number: ".5", "5.", "5.0"
            text = text[1:] if text.startswith("0.") else text + rng.choice((".", ".0")) if "." not in text else text
        if rng.random() < 0.07 and (code != "esr" or value > 0):  # censored: in the text or the comparator column
            sign = rng.choice((">", ">", ">=", "<", "<="))
            if rng.random() < 0.5:
                text = sign + rng.choice(("", "", "", " ")) + text
            else:
                comparator = sign
        elif code == "esr" and value == 0 and rng.random() < 0.1:
            text = "<0"  # an empty interval (semantics 14)
        if rng.random() < 0.003:
            unit = unit.upper()  # "MG/DL": not a UCUM spelling
        return text, unit, comparator

    def patient(self, index: int) -> list[tuple[str, ...]]:
        rng = random.Random(f"{self.seed}:{index}")
        pid = f"p{index:05d}"
        timed: list[tuple[str, ...]] = []
        background: list[tuple[str, ...]] = []

        def row(time: str, code: str, value: str = "", unit: str = "", comparator: str = "", site: str = "",
                gene: str = "", agent: str = "") -> tuple[str, ...]:
            return (pid, time, code, value, unit, comparator, site, gene, agent)

        if rng.random() < 0.92:
            background.append(row("", "age_years", rng.choice(_AGES)))
        if rng.random() < 0.8:
            background.append(row("", "sex", rng.choice(("female", "male"))))
        for name, weight in _CONDITIONS:
            if rng.random() < weight / 100:
                status = rng.choice(("confirmed", "confirmed", "suspected", "", "Suspected", "resolved"))
                agent = rng.choice(("EBV", "EBV", "", "CMV")) if name == "infection" else ""
                when = rng.choice(("", "", "2024-01-01"))  # a condition's time is no time point
                background.append(row(when, name, status, agent=agent))
        if rng.random() < 0.05:
            background.append(row(rng.choice(("", "2024-02-01T10:00:00Z")), rng.choice(("anakinra", "cyclosporine"))))
        severity = rng.random() ** 1.5
        untimed = rng.random() < 0.03
        n_points = 0 if rng.random() < 0.01 else rng.choices((1, 2, 3, 4, 5, 6), (20, 20, 18, 16, 14, 12))[0]
        start = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=rng.randrange(330),
                                                                      hours=rng.choice((0, 0, 8, 14, 20)),
                                                                      minutes=rng.choice((0, 0, 0, 30)))
        moments = [start][:n_points]
        while len(moments) < n_points:
            moments.append(moments[-1] + timedelta(hours=rng.choice(_GAPS_H)))
        density = rng.uniform(0.25, 0.8)
        for moment in moments:
            stamp = "" if untimed else self.stamp(rng, moment)
            for code in _PANEL:
                if rng.random() < density * (0.5 if code in ("alt", "crp", "lymphocytes", "sodium") else 1):
                    value, unit, comparator = self.lab_value(rng, code, severity)
                    spelling = rng.random()
                    code_text = {"ferritin": "LOINC:2276-4", "platelets": "PLT", "hemoglobin": "Hb"}.get(code, code) \
                        if spelling < 0.05 else code.upper() if spelling < 0.07 else code
                    timed.append(row(stamp, code_text, value, unit, comparator))
                    if rng.random() < 0.06:  # a tie: same code, same instant, another value; the later row wins
                        tie_stamp = stamp if untimed or rng.random() < 0.5 else self.stamp(rng, moment)
                        value, unit, comparator = self.lab_value(rng, code, severity)
                        timed.append(row(tie_stamp, code, value, unit, comparator))
            if rng.random() < 0.7:
                value, unit, comparator = self.lab_value(rng, "temperature", severity)
                timed.append(row(stamp, "temperature", value, unit, comparator))
            self.findings(rng, timed, row, stamp, severity)
        if rng.random() < 0.12:  # untimed labs (background facts), anywhere in the file order
            for code in rng.sample(("ferritin", "platelets", "fibrinogen", "scd25"), 2):
                value, unit, comparator = self.lab_value(rng, code, severity)
                timed.insert(rng.randrange(len(timed) + 1), row("", code, value, unit, comparator))
        if rng.random() < 0.3:
            self.findings(rng, background, row, "", severity)
        rows = background + timed
        if rng.random() < 0.3:
            rng.shuffle(rows)  # file order is not time order
        bad = sum(rng.random() < 0.03 for _ in rows) + (rng.random() < 0.02)
        for _ in range(bad):
            code, value, unit, comparator = rng.choice(_BAD)
            time = self.stamp(rng, rng.choice(moments or [start]))
            if rng.random() < 0.2:  # a good row but for its time
                code, value, unit, comparator = "ferritin", "900", "ng/mL", ""
                time = rng.choice(_BAD_TIMES)
            rows.insert(rng.randrange(len(rows) + 1), row(time, code, value, unit, comparator))
        return rows

    def findings(self, rng: random.Random, out: list, row, stamp: str, severity: float) -> None:
        sick = rng.random() < severity
        if rng.random() < 0.5:
            out.append(row(stamp, rng.choice(("fever", "fever", "febrile")), rng.choice(_TRUE if sick else _FALSE)))
        for organ in ("splenomegaly", "hepatomegaly"):
            if rng.random() < 0.35:
                kind = rng.random()
                if kind < 0.5:
                    out.append(row(stamp, organ, rng.choice(_TRUE if sick else _FALSE)))
                elif kind < 0.85:
                    out.append(row(stamp, organ, rng.choice(("1", "2", "2.9", "3", "3.0", "4.5")),
                                   rng.choice(("cm", "cm", ""))))
                else:
                    out.append(row(stamp, organ, rng.choice(("29", "30", "45")), "mm"))
        if rng.random() < 0.25:
            site = rng.choice(("bone-marrow", "bone-marrow", "liver", "spleen", "lymph-node", "", "marrow"))
            out.append(row(stamp, "hemophagocytosis", rng.choice(_TRUE if sick else _FALSE), site=site))
        if rng.random() < 0.06:
            out.append(row(stamp, "hlh-molecular-diagnosis", "true", gene=rng.choice(("PRF1", "UNC13D", "prf1"))))
            out.append(row(stamp, "hlh-molecular-diagnosis", "false", gene="STXBP2"))
        elif rng.random() < 0.08:
            out.append(row(stamp, "hlh-molecular-diagnosis", rng.choice(_FALSE)))
        for flag in _FLAGS:
            if rng.random() < 0.1:
                out.append(row(stamp, flag, rng.choice(_TRUE if rng.random() < severity else _FALSE)))

    @staticmethod
    def stamp(rng: random.Random, moment: datetime) -> str:
        """The instant as text: a date at midnight, Z, or (rarely) a +02:00 offset."""
        if moment.hour == moment.minute == 0 and rng.random() < 0.5:
            return moment.strftime("%Y-%m-%d")
        if rng.random() < 0.05:
            return (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cohort_rows(patients: int, *, seed: int = 0) -> Iterator[tuple[str, ...]]:
    """Data rows (no header) of ``patients`` synthetic patients, in :data:`COLUMNS` order ('' = empty).

    Pairs of neighbouring patients sometimes have their rows interleaved (each
    keeping its own order), as in files merged from two sources.
    """
    gen = _Gen(seed)
    index = 0
    while index < patients:
        rows = gen.patient(index)
        index += 1
        mix = random.Random(f"{seed}:mix:{index}")
        if index < patients and mix.random() < 0.1:
            other = gen.patient(index)
            index += 1
            merged = []
            while rows or other:
                source = rows if other == [] or (rows and mix.random() < 0.5) else other
                merged.append(source.pop(0))
            rows = merged
        yield from rows


def write_cohort_csv(path: str | Path, patients: int, *, seed: int = 0) -> int:
    """Write :func:`cohort_rows` as a UTF-8 CSV with a header; returns the number of data rows."""
    rows = list(cohort_rows(patients, seed=seed))
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([COLUMNS, *rows])
    return len(rows)


# The benchmark cohort: one row per (patient, slot); a patient has 100-200 slots.  Slot 0 is the age, 1 the
# sex, 2 a condition (sJIA for a third of patients); the others are panels of 16 (15 labs and a
# temperature) drawn 8, 12 or 24 h apart, so that the 72 h window matters: 75 % of a panel's slots hold
# their lab, 15 % a finding instead (the lab is missing there), 8 % another lab (a repeat), 2 % a bad row.
_BULK_LABS = """(VALUES
 (0, 0, 'ferritin', 'ng/mL', 50, 30000, 0), (0, 1, 'ferritin', 'ug/L', 50, 30000, 0),
 (0, 2, 'ferritin', 'pmol/L', 112, 67410, 0), (1, 0, 'hemoglobin', 'g/L', 50, 160, 0),
 (1, 1, 'hemoglobin', 'g/dL', 5, 16, 1), (1, 2, 'hemoglobin', 'mmol/L', 3.1, 9.9, 2),
 (2, 0, 'platelets', '10*9/L', 5, 450, 0), (2, 1, 'platelets', '/uL', 5000, 450000, 0),
 (2, 2, 'platelets', 'K/uL', 5, 450, 0), (2, 3, 'platelets', 'G/L', 5, 450, 0),
 (3, 0, 'neutrophils', '10*9/L', 0.05, 9, 2), (3, 1, 'neutrophils', '/uL', 50, 9000, 0),
 (4, 0, 'leukocytes', '10*9/L', 0.5, 15, 1), (4, 1, 'leukocytes', '/uL', 500, 15000, 0),
 (5, 0, 'triglycerides', 'mg/dL', 40, 700, 0), (5, 1, 'triglycerides', 'mmol/L', 0.45, 7.9, 2),
 (5, 2, 'triglycerides', 'g/L', 0.4, 7, 2), (6, 0, 'fibrinogen', 'g/L', 0.3, 5, 2),
 (6, 1, 'fibrinogen', 'mg/dL', 30, 500, 0), (7, 0, 'ast', 'U/L', 10, 1500, 0),
 (7, 1, 'ast', 'ukat/L', 0.17, 25, 2), (8, 0, 'ldh', 'U/L', 150, 5000, 0), (9, 0, 'alt', 'U/L', 10, 1000, 0),
 (10, 0, 'd-dimer', 'mg/L', 0.1, 30, 2), (10, 1, 'd-dimer', 'ug/L', 100, 30000, 0),
 (11, 0, 'esr', 'mm/h', 0, 100, 0), (12, 0, 'scd25', 'U/mL', 300, 20000, 0),
 (12, 1, 'scd25', 'pg/mL', 300, 20000, 0), (13, 0, 'crp', 'mg/L', 0.5, 250, 1),
 (14, 0, 'albumin', 'g/dL', 1.5, 5, 1), (14, 1, 'albumin', 'g/L', 15, 50, 0),
 (15, 0, 'temperature', 'Cel', 36, 41, 1), (15, 1, 'temperature', '[degF]', 96.8, 105.8, 1))
 AS v(a, u, code, unit, lo, hi, digits)"""
_BULK_FINDINGS = ("fever", "fever", "splenomegaly", "hepatomegaly", "hemophagocytosis", "nk-activity-low",
                  "hemorrhage", "cns-dysfunction", "active-arthritis", "proteinuria")
_BULK_CONDITIONS = ("sJIA", "sJIA", "sJIA", "AOSD", "SLE", "malignancy", "sepsis", "infection", "Kawasaki")


def _bulk_query(rows: int, seed: int) -> str:
    """The SQL, with each ``hash(args, 'name')`` re-mixed per name: DuckDB combines a hash's
    arguments so that hashes differing only in the last argument are correlated."""
    def mix(match: re.Match) -> str:
        salt = zlib.crc32(match.group(2).encode())
        return f"CAST(hash(xor(hash({match.group(1)}), CAST({salt} AS UBIGINT))) >> 1 AS BIGINT)"
    return re.sub(r"hash\(([^()']*), '(\w+)'\)", mix, _bulk_sql(rows, seed))


def _bulk_sql(rows: int, seed: int) -> str:
    patients = rows // 140 + 1  # 150 rows on average: enough patients to fill ``rows``
    findings = "[" + ", ".join(f"'{f}'" for f in _BULK_FINDINGS) + "]"
    conditions = "[" + ", ".join(f"'{c}'" for c in _BULK_CONDITIONS) + "]"
    return f"""
    WITH v AS (SELECT * FROM {_BULK_LABS}),
    nu AS (SELECT a, count(*) AS n FROM v GROUP BY a),
    pat AS (
      SELECT p, CAST(100 + hash(p, {seed}, 'n') % 101 AS BIGINT) AS n_rows,
             [8, 12, 24][1 + hash(p, {seed}, 'gap') % 3] AS gap_h,
             TIMESTAMP '2024-01-01' + to_hours(CAST(hash(p, {seed}, 'start') % 7920 AS BIGINT)) AS start
      FROM range({patients}) t(p)),
    slots AS (SELECT p, gap_h, start, unnest(range(n_rows)) AS k FROM pat),
    r AS (
      SELECT p, k, start + to_hours(CAST(gap_h * ((k - 3) // 16) AS BIGINT)) AS ts,
             hash(p, k, {seed}, 'kind') % 100 AS kind, hash(p, k, {seed}, 'a') % 16 AS a,
             hash(p, k, {seed}, 'u') AS uh, (hash(p, k, {seed}, 'x') % 1000000) / 1e6 AS x,
             hash(p, k, {seed}, 'c') % 100 AS c
      FROM slots),
    lab AS (
      SELECT r.*, v.code AS lcode, v.unit AS lunit, v.lo + r.x * (v.hi - v.lo) AS lval, v.digits
      FROM r JOIN nu ON nu.a = CASE WHEN r.kind < 75 THEN (r.k + 13) % 16 ELSE r.a END  -- (k - 3) mod 16
             JOIN v ON v.a = nu.a AND v.u = r.uh % nu.n)
    SELECT 'b' || lpad(CAST(p AS VARCHAR), 8, '0') AS patient_id,
      CASE WHEN k < 3 THEN '' ELSE strftime(ts, '%Y-%m-%dT%H:%M:%SZ') END AS time,
      CASE WHEN k = 0 THEN 'age_years' WHEN k = 1 THEN 'sex'
           WHEN k = 2 THEN {conditions}[1 + hash(p, {seed}, 'cond') % {len(_BULK_CONDITIONS)}]
           WHEN kind >= 98 THEN 'ferriton'
           WHEN kind >= 75 AND kind < 90 THEN {findings}[1 + hash(p, k, {seed}, 'f') % {len(_BULK_FINDINGS)}]
           ELSE lcode END AS code,
      CASE WHEN k = 0 THEN CAST(1 + hash(p, {seed}, 'age') % 60 AS VARCHAR)
           WHEN k = 1 THEN CASE WHEN p % 2 = 0 THEN 'female' ELSE 'male' END
           WHEN k = 2 THEN CASE WHEN c < 80 THEN 'confirmed' ELSE 'suspected' END
           WHEN kind >= 98 THEN '700'
           WHEN kind >= 75 AND kind < 90 THEN CASE WHEN c < 55 THEN 'true' ELSE 'false' END
           ELSE CASE WHEN c < 2 THEN '>' WHEN c < 3 THEN '<' ELSE '' END
                || CASE WHEN digits = 0 THEN CAST(CAST(round(lval) AS BIGINT) AS VARCHAR)
                        ELSE CAST(CAST(round(lval, digits) AS DECIMAL(18, 2)) AS VARCHAR) END END AS value,
      CASE WHEN k < 3 OR (kind >= 75 AND kind < 90) THEN '' WHEN kind >= 98 THEN 'ng/mL'
           WHEN c = 99 THEN 'furlong/L' ELSE lunit END AS unit,
      '' AS comparator,
      CASE WHEN k >= 3 AND kind >= 75 AND kind < 90 AND c % 3 = 0 THEN 'bone-marrow' ELSE '' END AS site,
      '' AS gene, '' AS agent
    FROM lab ORDER BY p, k LIMIT {int(rows)}"""


def write_bulk_parquet(path: str | Path, rows: int, *, seed: int = 0) -> int:
    """Write a benchmark cohort of about ``rows`` rows (150 per patient on average) as Parquet; returns rows.

    Generated in DuckDB SQL from ``range()`` with hash-based pseudo-randomness, so
    10 million rows take seconds.  Every column is VARCHAR, as in the CSV.
    """
    import duckdb

    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    with duckdb.connect(":memory:") as db:
        db.execute("SET preserve_insertion_order = true")
        db.execute(f"COPY ({_bulk_query(rows, seed)}) TO '{temporary}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)")
        written = db.execute(f"SELECT count(*) FROM read_parquet('{temporary}')").fetchone()[0]
    temporary.replace(target)
    return int(written)
