"""Points scores and formulas: HScore (with its probability table), MS score, MH score, ISTH DIC, ferritin/ESR.

Vectors from reference/criteria.md section 10, and both sides of every band edge.
"""

import pytest

from conftest import patient


def lab(code, value, unit, comparator=None):
    obs = {"code": code, "value": value, "unit": unit}
    if comparator:
        obs["comparator"] = comparator
    return obs


def finding(code, present=True, **extra):
    return {"code": code, "present": present, **extra}


def criterion(engine, observations, cid, **kw):
    return engine.explain(patient(observations, **kw)).criterion(cid)


def item(result, item_id):
    return next(i for i in result["items"] if i["id"] == item_id)


HSCORE_274 = [finding("immunosuppression", False), lab("temperature", 40, "Cel"), finding("hepatomegaly"),
              finding("splenomegaly"), lab("hemoglobin", 8, "g/dL"), lab("leukocytes", 3000, "/uL"),
              lab("platelets", 200, "10*9/L"), lab("ferritin", 4000, "ng/mL"), lab("triglycerides", 3, "mmol/L"),
              lab("fibrinogen", 2, "g/L"), lab("ast", 100, "U/L"), finding("hemophagocytosis", site="bone-marrow")]
HSCORE_169 = [finding("immunosuppression"), lab("temperature", 40, "Cel"), finding("hepatomegaly"),
              finding("splenomegaly"), lab("hemoglobin", 8, "g/dL"), lab("leukocytes", 3000, "/uL"),
              lab("platelets", 50, "10*9/L"), lab("ferritin", 500, "ng/mL"), lab("triglycerides", 1, "mmol/L"),
              lab("fibrinogen", 2, "g/L"), lab("ast", 20, "U/L"), finding("hemophagocytosis", False, site="bone-marrow")]
HSCORE_0 = [finding("immunosuppression", False), lab("temperature", 37, "Cel"), finding("hepatomegaly", False),
            finding("splenomegaly", False), lab("hemoglobin", 8, "g/dL"), lab("leukocytes", 7000, "/uL"),
            lab("platelets", 200, "10*9/L"), lab("ferritin", 500, "ng/mL"), lab("triglycerides", 1, "mmol/L"),
            lab("fibrinogen", 4, "g/L"), lab("ast", 20, "U/L"), finding("hemophagocytosis", False)]


@pytest.mark.parametrize("observations, score, status, probability, label", [
    (HSCORE_274, 274, "met", 0.99, ">99%"),
    (HSCORE_169, 169, "met", 0.526, "52.6%"),
    (HSCORE_0, 0, "not_met", 0.01, "<1%"),
])
def test_hscore_vectors_and_probability(engine, observations, score, status, probability, label):
    r = criterion(engine, observations, "hscore", age=45)
    assert (r["status"], r["score"], r["score_range"], r["cutoff"]) == (status, score, [score, score], 169)
    assert (r["probability"], r["probability_label"]) == (probability, label)


def test_hscore_one_point_below_the_cutoff_is_not_met(engine):
    observations = [o for o in HSCORE_169 if o["code"] != "immunosuppression"] + [finding("immunosuppression", False)]
    r = criterion(engine, observations, "hscore")  # 151
    assert (r["status"], r["score"]) == ("not_met", 151)


@pytest.mark.parametrize("item_id, code, unit, value, points", [
    ("hscore.temperature", "temperature", "Cel", 38.39, 0), ("hscore.temperature", "temperature", "Cel", 38.4, 33),
    ("hscore.temperature", "temperature", "Cel", 39.4, 33), ("hscore.temperature", "temperature", "Cel", 39.5, 49),
    ("hscore.ferritin", "ferritin", "ng/mL", 1999, 0), ("hscore.ferritin", "ferritin", "ng/mL", 2000, 35),
    ("hscore.ferritin", "ferritin", "ng/mL", 6000, 35), ("hscore.ferritin", "ferritin", "ng/mL", 6001, 50),
    ("hscore.triglycerides", "triglycerides", "mmol/L", 1.49, 0), ("hscore.triglycerides", "triglycerides", "mmol/L", 1.5, 44),
    ("hscore.triglycerides", "triglycerides", "mmol/L", 4.0, 44), ("hscore.triglycerides", "triglycerides", "mmol/L", 4.01, 64),
    # 132.7 mg/dL is 1.4983 mmol/L: below the published 1.5 mmol/L (compare in the published unit)
    ("hscore.triglycerides", "triglycerides", "mg/dL", 132.7, 0),
    ("hscore.fibrinogen", "fibrinogen", "g/L", 2.5, 30), ("hscore.fibrinogen", "fibrinogen", "g/L", 2.51, 0),
    ("hscore.fibrinogen", "fibrinogen", "mg/dL", 250, 30),
    ("hscore.ast", "ast", "U/L", 29, 0), ("hscore.ast", "ast", "U/L", 30, 19),
])
def test_hscore_band_edges(engine, item_id, code, unit, value, points):
    r = criterion(engine, [lab(code, value, unit)], "hscore")
    assert item(r, item_id)["points"] == points


@pytest.mark.parametrize("observations, points_range, status", [
    ([lab("hemoglobin", 9.2, "g/dL"), lab("platelets", 110000, "/uL")], [24, 34], "met"),  # semantics 3's example
    ([lab("hemoglobin", 9.3, "g/dL"), lab("platelets", 111, "10*9/L")], [0, 0], "not_met"),
    ([lab("hemoglobin", 9.2, "g/dL"), lab("platelets", 111, "10*9/L")], [0, 24], "missing"),
    # the HScore counts leukocytes, not neutrophils: low neutrophils alone do not count
    ([lab("hemoglobin", 8, "g/dL"), lab("neutrophils", 0.5, "10*9/L"), lab("leukocytes", 6, "10*9/L"),
      lab("platelets", 200, "10*9/L")], [0, 0], "not_met"),
    ([lab("hemoglobin", 8, "g/dL"), lab("leukocytes", 5, "10*9/L"), lab("platelets", 200, "10*9/L")], [24, 24], "met"),
])
def test_hscore_cytopenias(engine, observations, points_range, status):
    r = criterion(engine, observations, "hscore")
    assert (item(r, "hscore.cytopenias")["points_range"], item(r, "hscore.cytopenias")["status"]) == (points_range, status)


@pytest.mark.parametrize("observations, points_range, status", [
    ([finding("fever")], [0, 49], "missing"),  # semantics 17: fever >= 38.0 includes the 0 band
    ([finding("fever", False)], [0, 0], "not_met"),
    ([], [0, 49], "missing"),
    ([finding("fever"), lab("temperature", 38.2, "Cel")], [0, 0], "not_met"),  # a value decides the band
    ([lab("temperature", 103, "[degF]")], [49, 49], "met"),  # 39.44 C
])
def test_hscore_temperature_without_a_value(engine, observations, points_range, status):
    r = criterion(engine, observations, "hscore")
    got = item(r, "hscore.temperature")
    assert (got["points_range"], got["status"]) == (points_range, status)


def test_hscore_missing_items_give_a_score_range_and_probability_range(engine):
    r = criterion(engine, [lab("ferritin", 8000, "ng/mL"), lab("fibrinogen", 1.2, "g/L")], "hscore")
    assert (r["status"], r["score"], r["score_range"]) == ("indeterminate", 80, [80, 337])
    assert r["probability"] == 0.01 and r["probability_range"] == [0.01, 0.99]
    assert "temperature" in r["would_decide"] and "immunosuppression" in r["would_decide"]


def test_hscore_censored_ferritin(engine):
    r = criterion(engine, [lab("ferritin", 6000, "ng/mL", ">")], "hscore")
    assert item(r, "hscore.ferritin")["points_range"] == [50, 50]
    r = criterion(engine, [lab("ferritin", 2000, "ng/mL", ">")], "hscore")
    assert item(r, "hscore.ferritin")["points_range"] == [35, 50] and item(r, "hscore.ferritin")["status"] == "met"


def test_hscore_hemophagocytosis_only_in_bone_marrow(engine):
    for site, status in (("bone-marrow", "met"), (None, "met"), ("liver", "missing"), ("spleen", "missing")):
        obs = finding("hemophagocytosis", **({"site": site} if site else {}))
        assert item(criterion(engine, [obs], "hscore"), "hscore.hemophagocytosis")["status"] == status, site


def ms(cns, hem, arthritis, plt, ldh, fib, fer, fever=True):
    return [finding("fever", fever), finding("cns-dysfunction", bool(cns)), finding("hemorrhage", bool(hem)),
            finding("active-arthritis", bool(arthritis)), lab("platelets", plt, "10*9/L"), lab("ldh", ldh, "U/L"),
            lab("fibrinogen", fib, "mg/dL"), lab("ferritin", fer, "ng/mL")]


@pytest.mark.parametrize("observations, score, status", [
    (ms(0, 0, 0, 100, 1000, 150, 10000), 1.1, "met"),
    (ms(0, 0, 1, 400, 300, 500, 500), -4.15, "not_met"),
    (ms(1, 1, 0, 50, 2000, 100, 20000), 7.43, "met"),
    # exactly on the cut-off: -0.003 * 700 = -2.1 (binary floating point would give -2.1000000000000005)
    (ms(0, 0, 0, 700, 0, 0, 0), -2.1, "met"),
    (ms(0, 0, 0, 700.1, 0, 0, 0), -2.1003, "not_met"),
    (ms(0, 0, 0, 100, 1000, 150, 10000, fever=False), 1.1, "not_met"),
])
def test_ms_score_vectors(engine, observations, score, status):
    r = criterion(engine, observations, "ms_score")
    assert (r["status"], r["score"], r["cutoff"]) == (status, score, -2.1)


def test_ms_score_units_are_converted_to_the_published_ones(engine):
    same = [o if o["code"] != "fibrinogen" else lab("fibrinogen", 1.5, "g/L") for o in ms(0, 0, 0, 100, 1000, 150, 10000)]
    assert criterion(engine, same, "ms_score")["score"] == 1.1


def test_ms_score_missing_operands_leave_an_end_of_the_range_open(engine):
    no_platelets = [o for o in ms(0, 0, 0, 700, 0, 0, 0) if o["code"] != "platelets"]
    r = criterion(engine, no_platelets, "ms_score")  # negative coefficient: the lower end is open
    assert (r["status"], r["score"], r["score_range"]) == ("indeterminate", None, [None, 0])
    assert r["would_decide"] == ["platelets"]
    no_ferritin = [o for o in ms(0, 0, 1, 400, 300, 500, 500) if o["code"] != "ferritin"]
    r = criterion(engine, no_ferritin, "ms_score")  # positive coefficient: the upper end is open
    assert (r["status"], r["score_range"]) == ("indeterminate", [-4.2, None])


def test_ms_score_censored_operand(engine):
    # semantics 14: ferritin < 12000 gives [-3.3, -2.1): every completion is below -2.1
    base = [o for o in ms(0, 0, 0, 1100, 0, 0, 0) if o["code"] != "ferritin"]
    r = criterion(engine, base + [lab("ferritin", 12000, "ng/mL", "<")], "ms_score")
    assert (r["status"], r["score"], r["score_range"]) == ("not_met", None, [-3.3, -2.1])
    r = criterion(engine, base + [lab("ferritin", 12000, "ng/mL", "<=")], "ms_score")
    assert r["status"] == "indeterminate"


def test_ms_score_needs_sjia(engine):
    r = criterion(engine, ms(0, 0, 0, 100, 1000, 150, 10000), "ms_score", conditions=(("SLE", "confirmed"),))
    assert r["status"] == "not_applicable" and r["score"] == 1.1
