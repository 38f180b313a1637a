"""The count rules and the remaining scores: mas_seed, ravelli2005, kostik2015, parodi2009, ohi, mh_score,
isth_dic, ferritin_esr -- vectors from reference/criteria.md and both sides of every cut-off."""

import pytest

from conftest import patient
from test_scores import criterion, finding, item, lab

ALL_IDS = ["hlh2004", "mas2016", "mas_seed", "ravelli2005", "hscore", "ms_score", "mh_score", "ferritin_esr",
           "ohi", "parodi2009", "isth_dic", "kostik2015"]
FEVER = finding("fever")


def test_every_criteria_set_is_in_every_report(engine):
    for data in (patient([]), patient([FEVER], conditions=()), patient([lab("ferritin", 900, "ng/mL")], age=None)):
        report = engine.explain(data).to_dict()
        assert [c["id"] for c in report["criteria"]] == ALL_IDS
        for c in report["criteria"]:
            assert c["status"] in {"met", "not_met", "indeterminate", "not_applicable"}
            assert c["source"] and c["citation"]


def variant(ferritin, hb, plt, anc, tg, fib, ast):
    return [FEVER, lab("ferritin", ferritin, "ng/mL"), lab("hemoglobin", hb, "g/L"), lab("platelets", plt, "10*9/L"),
            lab("neutrophils", anc, "10*9/L"), lab("triglycerides", tg, "mg/dL"), lab("fibrinogen", fib, "mg/dL"),
            lab("ast", ast, "U/L")]


@pytest.mark.parametrize("name, values, mas2016, seed", [
    ("V-a", (1000, 120, 150, 3.0, 200, 300, 100), ("met", 4), ("not_met", 0)),
    ("V-b", (1000, 85, 250, 0.8, 100, 400, 30), ("not_met", 0), ("met", 2)),
    ("V-c", (684, 80, 50, 0.5, 300, 100, 100), ("not_met", 4), ("not_met", 5)),
    ("V-d", (700, 120, 90, 3.0, 300, 400, 30), ("met", 2), ("met", 2)),
])
def test_seed_variant_discriminating_vectors(engine, name, values, mas2016, seed):
    report = engine.explain(patient(variant(*values)))
    assert (report.criterion("mas2016")["status"], report.criterion("mas2016")["score"]) == mas2016, name
    assert (report.criterion("mas_seed")["status"], report.criterion("mas_seed")["score"]) == seed, name


def test_seed_variant_counts_lineages_separately_and_keeps_the_infant_rule(engine):
    two_lineages = [FEVER, lab("ferritin", 900, "ng/mL"), lab("hemoglobin", 85, "g/L"), lab("platelets", 90, "10*9/L"),
                    lab("neutrophils", 2, "10*9/L"), lab("triglycerides", 1, "mmol/L"), lab("fibrinogen", 3, "g/L")]
    assert criterion(engine, two_lineages, "mas_seed")["status"] == "met"
    hlh = criterion(engine, two_lineages, "hlh2004")  # in HLH-2004 the two lineages are one criterion
    assert item(hlh, "hlh2004.cytopenias")["status"] == "met" and hlh["score"] == 3  # fever, cytopenias, ferritin
    infant = [o if o["code"] != "hemoglobin" else lab("hemoglobin", 95, "g/L") for o in two_lineages]
    assert criterion(engine, infant, "mas_seed", age=10 / 365.25)["status"] == "met"
    assert criterion(engine, infant, "mas_seed", age=1)["status"] == "not_met"
    # 265 mg/dL = 2.992 mmol/L: the seed's ">= 3.0 mmol/L (i.e. >= 265 mg/dL)" is compared in mmol/L
    tg = criterion(engine, [lab("triglycerides", 265, "mg/dL")], "mas_seed")
    assert item(tg, "mas_seed.triglycerides")["status"] == "not_met"


# (item id, code, unit, value on the met side, value on the other side)
CUTOFFS = [
    ("mas_seed.hemoglobin", "hemoglobin", "g/L", 89.9, 90),
    ("mas_seed.platelets", "platelets", "10*9/L", 99, 100),
    ("mas_seed.neutrophils", "neutrophils", "10*9/L", 0.99, 1.0),
    ("mas_seed.triglycerides", "triglycerides", "mmol/L", 3.0, 2.99),
    ("mas_seed.fibrinogen", "fibrinogen", "g/L", 1.5, 1.51),
    ("mas_seed.ferritin", "ferritin", "ng/mL", 685, 684),
    ("ravelli2005.platelets", "platelets", "10*9/L", 262, 263),
    ("ravelli2005.ast", "ast", "U/L", 60, 59),
    ("ravelli2005.leukocytes", "leukocytes", "10*9/L", 4.0, 4.1),
    ("ravelli2005.fibrinogen", "fibrinogen", "g/L", 2.5, 2.51),
    ("kostik2015.platelets", "platelets", "10*9/L", 211, 212),
    ("kostik2015.leukocytes", "leukocytes", "10*9/L", 9.9, 10),
    ("kostik2015.ast", "ast", "U/L", 59.8, 59.7),
    ("kostik2015.ldh", "ldh", "U/L", 883, 882),
    ("kostik2015.albumin", "albumin", "g/dL", 2.9, 3.0),
    ("kostik2015.albumin", "albumin", "g/L", 29, 29.1),
    ("kostik2015.ferritin", "ferritin", "ug/L", 401, 400),
    ("kostik2015.fibrinogen", "fibrinogen", "g/L", 1.8, 1.81),
    ("parodi2009.cytopenia.leukocytes", "leukocytes", "10*9/L", 4.0, 4.01),
    ("parodi2009.cytopenia.hemoglobin", "hemoglobin", "g/dL", 9.0, 9.1),
    ("parodi2009.cytopenia.platelets", "platelets", "10*9/L", 150, 151),
    ("parodi2009.ast", "ast", "U/L", 41, 40),
    ("parodi2009.ldh", "ldh", "U/L", 568, 567),
    ("parodi2009.fibrinogen", "fibrinogen", "g/L", 1.5, 1.51),
    ("parodi2009.triglycerides", "triglycerides", "mg/dL", 179, 178),
    ("parodi2009.ferritin", "ferritin", "ug/L", 501, 500),
    ("ohi.scd25", "scd25", "U/mL", 3901, 3900),
    ("ohi.ferritin", "ferritin", "ng/mL", 1001, 1000),
]


@pytest.mark.parametrize("item_id, code, unit, met, not_met", CUTOFFS)
def test_both_sides_of_every_cutoff(engine, item_id, code, unit, met, not_met):
    cid = item_id.split(".")[0]
    for value, expected in ((met, "met"), (not_met, "not_met")):
        r = criterion(engine, [lab(code, value, unit)], cid,
                      conditions=(("sJIA", "confirmed"), ("SLE", "confirmed"), ("malignancy", "confirmed")))
        assert item(r, item_id)["status"] == expected, (value, unit)


def test_ravelli2005_two_lab_or_two_clinical_or_laboratory(engine):
    two_labs = [lab("platelets", 200, "10*9/L"), lab("ast", 100, "U/L")]
    r = criterion(engine, two_labs, "ravelli2005")
    assert (r["status"], r["score"], r["cutoff"]) == ("indeterminate", 2, 2) or r["status"] == "met"
    assert r["status"] == "met"
    mixed = [lab("platelets", 300, "10*9/L"), lab("ast", 100, "U/L"), lab("leukocytes", 8, "10*9/L"),
             lab("fibrinogen", 3, "g/L"), finding("cns-dysfunction"), finding("hemorrhage", False),
             finding("hepatomegaly", False)]
    assert criterion(engine, mixed, "ravelli2005")["status"] == "met"
    one = [o if o["code"] != "cns-dysfunction" else finding("cns-dysfunction", False) for o in mixed]
    r = criterion(engine, one, "ravelli2005")
    assert (r["status"], r["score"], r["score_range"]) == ("not_met", 1, [1, 1])
    assert criterion(engine, two_labs, "ravelli2005", conditions=(("AOSD", "confirmed"),))["status"] == "not_applicable"


@pytest.mark.parametrize("size, expected", [(3, "met"), (2.9, "not_met"), (None, "missing"), (30, "met")])
def test_organ_size_rule(engine, size, expected):
    obs = finding("hepatomegaly", **({"value": size, "unit": "mm" if size == 30 else "cm"} if size is not None else {}))
    assert item(criterion(engine, [obs], "ravelli2005"), "ravelli2005.hepatomegaly")["status"] == expected
    assert item(criterion(engine, [obs], "hlh2004"), "hlh2004.splenomegaly")["status"] == "missing"


def test_kostik2015_three_of_eight(engine):
    three = [lab("platelets", 200, "10*9/L"), lab("ferritin", 500, "ug/L"), finding("proteinuria")]
    r = criterion(engine, three, "kostik2015")
    assert (r["status"], r["score"], r["cutoff"]) == ("met", 3, 3)
    r = criterion(engine, three[:2] + [finding("proteinuria", False)], "kostik2015")
    assert (r["status"], r["score"], r["score_range"]) == ("indeterminate", 2, [2, 7])
    assert r["post_test"]["probability"] is None and "infinite" in r["post_test"]["note"]


def test_parodi2009_needs_one_clinical_and_two_laboratory(engine):
    sle = (("SLE", "confirmed"),)
    labs = [lab("ast", 100, "U/L"), lab("ferritin", 2000, "ug/L")]
    r = criterion(engine, labs + [finding("hemorrhage")], "parodi2009", conditions=sle)
    assert (r["status"], r["score"], r["cutoff"]) == ("met", 3, None)
    # fever must be > 38.0 C when measured; a reported fever counts (semantics 18)
    r = criterion(engine, labs + [lab("temperature", 38.0, "Cel")], "parodi2009", conditions=sle)
    assert item(r, "parodi2009.fever")["status"] == "not_met" and r["status"] == "indeterminate"
    r = criterion(engine, labs + [lab("temperature", 38.1, "Cel")], "parodi2009", conditions=sle)
    assert item(r, "parodi2009.fever")["status"] == "met" and r["status"] == "met"
    r = criterion(engine, labs + [FEVER], "parodi2009", conditions=sle)
    assert r["status"] == "met"
    assert criterion(engine, labs + [FEVER], "parodi2009")["status"] == "not_applicable"  # sJIA, not SLE


def test_ohi_is_strict_and_needs_malignancy(engine):
    malignancy = (("malignancy", "confirmed"),)
    at = [lab("scd25", 3900, "U/mL"), lab("ferritin", 1000, "ng/mL")]
    above = [lab("scd25", 3901, "U/mL"), lab("ferritin", 1001, "ng/mL")]
    assert criterion(engine, at, "ohi", conditions=malignancy)["status"] == "not_met"
    r = criterion(engine, above, "ohi", conditions=malignancy)
    assert (r["status"], r["score"], r["cutoff"]) == ("met", 2, 2)
    assert criterion(engine, above, "ohi")["status"] == "not_applicable"
    # sCD25 in pg/mL cannot be converted to U/mL (semantics 10): missing
    r = criterion(engine, [lab("scd25", 9000, "pg/mL"), lab("ferritin", 5000, "ng/mL")], "ohi", conditions=malignancy)
    assert item(r, "ohi.scd25")["status"] == "missing" and r["status"] == "indeterminate"


def mh(age, anc, fib, spleen, plt, hb):
    return [lab("neutrophils", anc, "10*9/L"), lab("fibrinogen", fib, "mg/dL"), finding("splenomegaly", spleen),
            lab("platelets", plt, "10*9/L"), lab("hemoglobin", hb, "g/dL")], age


@pytest.mark.parametrize("values, score, status", [
    ((0.5, 0.8, 100, True, 50, 7.5), 123, "met"),
    ((1.6, 3.0, 131, False, 78, 10), 63, "met"),
    ((1.6, 3.0, 200, True, 78, 10), 60, "met"),
    ((1.61, 3.0, 200, True, 78, 10), 23, "not_met"),
    ((8, 3.0, 200, True, 150, 10), 12, "not_met"),
    ((8, 1.4, 132, False, 79, 8.3), 48, "not_met"),
])
def test_mh_score_vectors(engine, values, score, status):
    observations, age = mh(*values)
    r = criterion(engine, observations, "mh_score", age=age)
    assert (r["status"], r["score"], r["cutoff"]) == (status, score, 60)


def test_mh_score_with_age_unknown(engine):
    observations, _ = mh(1, 0.8, 100, True, 50, 7.5)
    r = criterion(engine, observations, "mh_score", age=None)
    assert (r["status"], r["score"], r["score_range"]) == ("met", 86, [86, 123])
    observations, _ = mh(1, 3.0, 200, False, 150, 10)
    r = criterion(engine, observations, "mh_score", age=None)
    assert (r["status"], r["score_range"], r["would_decide"]) == ("not_met", [0, 37], [])


def isth(plt, ddimer, pt, fib):
    return [lab("platelets", plt, "10*9/L"), lab("d-dimer", ddimer, "mg/L"), lab("pt-prolongation", pt, "s"),
            lab("fibrinogen", fib, "g/L")]


@pytest.mark.parametrize("values, score, status", [
    ((40, 6, 2, 2), 5, "met"),  # PLT < 50 (2) + strong fibrin marker (3)
    ((80, 6, 4, 2), 5, "met"),  # PLT 50-100 (1) + strong (3) + PT 3-6 s (1)
    ((40, 2, 2, 2), 4, "not_met"),  # PLT < 50 + moderate marker
    ((100, 0.5, 3, 1.0), 0, "not_met"),  # every unassigned boundary scores the lower band (semantics 36)
    ((50, 5.0, 6, 0.99), 5, "met"),  # 1 + 2 + 1 + 1
    ((10, 10, 10, 0.5), 8, "met"),
])
def test_isth_dic_vectors(engine, values, score, status):
    r = criterion(engine, isth(*values), "isth_dic", conditions=(("sepsis", "confirmed"),))
    assert (r["status"], r["score"], r["cutoff"]) == (status, score, 5)


def test_isth_dic_gate_and_units(engine):
    assert criterion(engine, isth(10, 10, 10, 0.5), "isth_dic")["status"] == "not_applicable"  # sJIA only
    ebv = criterion(engine, isth(10, 10, 10, 0.5), "isth_dic", conditions=(("infection", "confirmed"),))
    assert ebv["status"] == "met"
    r = criterion(engine, [lab("d-dimer", 5001, "ug/L")], "isth_dic", conditions=(("malignancy", "suspected"),))
    assert item(r, "isth_dic.fibrin_marker")["points"] == 3 and r["status"] == "indeterminate"


@pytest.mark.parametrize("ferritin, esr, status, score", [
    (5000, 20, "met", 250), (1156, 70, "not_met", 16.5143), (2150, 100, "met", 21.5), (2149, 100, "not_met", 21.49),
    (500, 0, "met", None),  # ESR 0: the ratio is unbounded (semantics 33)
    (0, 0, "indeterminate", None),  # 0/0 is undefined
])
def test_ferritin_esr(engine, ferritin, esr, status, score):
    r = criterion(engine, [lab("ferritin", ferritin, "ng/mL"), lab("esr", esr, "mm/h")], "ferritin_esr")
    assert (r["status"], r["score"], r["cutoff"]) == (status, score, 21.5)


def test_ferritin_esr_missing_and_censored(engine):
    r = criterion(engine, [lab("ferritin", 5000, "ng/mL")], "ferritin_esr")
    assert (r["status"], r["score"], r["score_range"], r["would_decide"]) == ("indeterminate", None, [0, None], ["esr"])
    r = criterion(engine, [lab("ferritin", 2150, "ng/mL", "<"), lab("esr", 100, "mm/h")], "ferritin_esr")
    assert (r["status"], r["score_range"]) == ("not_met", [0, 21.5])  # can only come below 21.5
    r = criterion(engine, [lab("ferritin", 20000, "ng/mL", ">"), lab("esr", 10, "mm/h")], "ferritin_esr")
    assert (r["status"], r["score"], r["score_range"]) == ("met", None, [2000, None])


def test_ferritin_esr_with_a_censored_esr_near_zero(engine):
    r = criterion(engine, [lab("ferritin", 500, "ng/mL"), lab("esr", 0, "mm/h", ">")], "ferritin_esr")
    assert (r["status"], r["score"], r["score_range"]) == ("indeterminate", None, [0, None])
    r = criterion(engine, [lab("ferritin", 500, "ng/mL"), lab("esr", 5, "mm/h", "<")], "ferritin_esr")
    assert (r["status"], r["score_range"]) == ("met", [100, None])  # 500 / [0, 5) > 100
