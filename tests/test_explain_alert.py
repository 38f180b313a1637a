"""explain_alert: one value flagged by another tool, explained (alone, or for a given patient)."""

from __future__ import annotations

import json
from math import prod

import pytest

import kg
from conftest import EXAMPLES


@pytest.fixture(scope="module")
def ferritin(engine):
    return engine.explain_alert("ferritin", 18000, "ng/mL", age_years=7)


def test_the_answer_is_stable_json(ferritin):
    assert ferritin["schema"] == "mas-kg/alert-explanation/v1"
    assert json.loads(json.dumps(ferritin)) == ferritin
    assert set(ferritin) == {"schema", "alert", "patient", "context", "summary", "interpretation", "causal_chains",
                             "criteria", "syndromes", "discriminating_tests", "patient_specific", "ontology", "sources"}
    assert ferritin["alert"]["test"] == "ferritin" and "LOINC:2276-4" in ferritin["alert"]["loinc"]
    assert ferritin["summary"].startswith("ferritin 18000 ng/mL is high; meets hlh2004.ferritin, mas2016.ferritin")


def test_interpretation_against_the_age_appropriate_range(engine):
    # 700 ug/L is inside the ontology's range for a 2-week-old (150-973) and far above a 7-year-old girl's (8-115)
    infant = engine.explain_alert("ferritin", 700, "ug/L", age_years=0.05, sex="female")["interpretation"]
    child = engine.explain_alert("ferritin", 700, "ug/L", age_years=7, sex="female")["interpretation"]
    assert (infant["direction"], child["direction"]) == ("normal", "high")
    assert [(r["low"], r["high"]) for r in infant["reference_ranges"]] == [(150, 973)]
    assert [(r["low"], r["high"]) for r in child["reference_ranges"]] == [(8, 115)]
    assert all(r["source"] for r in infant["reference_ranges"] + child["reference_ranges"])
    unknown = engine.explain_alert("ferritin", 700, "ug/L")["interpretation"]
    assert len(unknown["reference_ranges"]) > 2  # no age, no sex: every band is a candidate


def test_fever_is_a_rule_not_a_range(engine):
    answer = engine.explain_alert("temperature", 102.2, "[degF]")
    assert answer["interpretation"]["direction"] == "high" and answer["interpretation"]["value"] == 39
    assert answer["interpretation"]["reference_ranges"][0]["rule"] == ">= 38 Cel"


def test_causal_chains_are_sign_consistent_and_sourced(engine, ferritin):
    low = engine.explain_alert("platelets", 40, "10*9/L", age_years=7)
    for answer, sign in ((ferritin, 1), (low, -1)):
        chains = answer["causal_chains"]
        assert chains
        for chain in chains:
            assert chain["steps"][-1]["to"] == engine.kb.lab_tests[answer["alert"]["term"]].measures
            assert prod(1 if s["sign"] == "+" else -1 for s in chain["steps"]) == sign
            assert all(s["sources"] for s in chain["steps"])
            assert set(s for step in chain["steps"] for s in step["sources"]) <= set(answer["sources"])


def test_criteria_items_that_read_the_test_with_their_verdicts(ferritin):
    items = {i["id"]: i for c in ferritin["criteria"] for i in c["items"]}
    assert items["mas2016.ferritin"]["status"] == "met" and items["mas2016.ferritin"]["rule"] == "> 684 ng/mL"
    assert items["hlh2004.ferritin"]["status"] == "met"
    assert items["hscore.ferritin"]["points"] == 50
    assert {c["id"] for c in ferritin["criteria"]} >= {"hlh2004", "mas2016", "hscore", "ms_score", "ferritin_esr"}
    assert all(c["sources"] for c in ferritin["criteria"])
    assert "isth_dic" not in {c["id"] for c in ferritin["criteria"]}  # DIC does not read ferritin


def test_syndromes_for_and_against_by_the_rules_that_read_the_value(ferritin):
    by = {s["category"]: s for s in ferritin["syndromes"]}
    assert by["mas"]["direction"] == "for" and by["mas"]["points"] == 2
    assert by["mas"]["evidence"][0]["rule"] == "ferritin-10000" and by["mas"]["evidence"][0]["sources"]
    assert "mas2016" in by["mas"]["criteria"] and "mas2016" not in by["primary_hlh"]["criteria"]
    assert by["disease_flare"]["direction"] == "against" and by["sepsis_dic"]["points"] == -1
    assert "rank" not in by["mas"]  # without a patient there is no ranking of the person
    low = kg.Engine().explain_alert("ferritin", 2000, "ng/mL", age_years=7)  # below the 10,000 level rule
    assert all(s["direction"] == "neutral" for s in low["syndromes"])


def test_discriminating_tests_decide_the_criteria_the_value_feeds(ferritin):
    tests = {t["test"]: t for t in ferritin["discriminating_tests"]}
    assert {"platelets", "fibrinogen", "triglycerides"} <= set(tests)
    assert tests["platelets"]["decides"] and tests["platelets"]["label"] == "platelet count"
    fed = {c["id"]: set(c["would_decide"]) for c in ferritin["criteria"]}
    for test in tests.values():
        assert all(test["test"] in fed[c] for c in test["decides"])
    assert "ferritin" not in tests


def test_with_a_patient_the_chains_start_from_the_patients_own_disease(engine, ferritin):
    assert not ferritin["causal_chains"][0]["in_context"]
    answer = engine.explain_alert("ferritin", 18000, "ng/mL", patient=EXAMPLES / "sjia-mas.json")
    assert answer["patient"] == "ex-sjia-mas" and answer["context"]["conditions"] == ["sJIA"]
    assert all(c["root"] == "mkg:SJIA" and c["in_context"] for c in answer["causal_chains"])
    assert [s["rank"] for s in answer["syndromes"]] == sorted(s["rank"] for s in answer["syndromes"])
    assert answer["syndromes"][0]["category"] == "mas"
    assert answer["patient_specific"]["other_findings_explained_by_the_same_chains"]


def test_with_a_patient_a_normal_esr_is_explained_by_the_discordance(engine):
    answer = engine.explain_alert("esr", 12, "mm/h", patient=EXAMPLES / "sjia-mas.json")
    assert answer["interpretation"]["direction"] == "normal" and answer["causal_chains"] == []
    [alert] = answer["patient_specific"]["alerts"]
    assert alert["code"] == "esr-crp-discordance" and answer["summary"].endswith(alert["message"])
    assert any("(-) fibrinogen" in chain["text"] for chain in alert["explanation"])
    assert set(alert["sources"]) <= set(answer["sources"])


def test_a_timed_value_joins_the_patients_trend(engine):
    answer = engine.explain_alert("platelets", 60, "10*9/L", patient=EXAMPLES / "sjia-flare.json",
                                  time="2024-02-14T09:00:00Z")
    assert answer["patient_specific"]["trend"]["points"][-1]["value"] == 60
    assert "falling-platelets" in [a["code"] for a in answer["patient_specific"]["alerts"]]


def test_a_value_older_than_the_patients_latest_is_explained_at_its_own_time(engine):
    answer = engine.explain_alert("platelets", 95, "10*9/L", patient=EXAMPLES / "sjia-mas.json",
                                  time="2024-05-07T08:00:00Z")  # between the first two platelet counts
    assert answer["alert"]["time"] == "2024-05-07T08:00:00Z" and answer["interpretation"]["direction"] == "low"
    assert answer["causal_chains"]


def test_patient_given_as_dict_object_or_path_agree(engine):
    path = EXAMPLES / "boundary-mas2016.json"
    data = json.loads(path.read_text())
    answers = [engine.explain_alert("platelets", 90, "10*9/L", patient=p)
               for p in (path, str(path), data, engine.read(data))]
    assert all(a == answers[0] for a in answers[1:])
    assert answers[0]["alert"]["time"] is None


def test_censored_value(engine):
    answer = engine.explain_alert("ferritin", 20000, "ng/mL", comparator=">", age_years=7)
    items = {i["id"]: i for c in answer["criteria"] for i in c["items"]}
    assert answer["interpretation"]["direction"] == "high" and items["hscore.ferritin"]["points"] == 50
    assert answer["alert"]["comparator"] == ">" and answer["summary"].startswith("ferritin >20000 ng/mL is high")


def test_module_level_call_matches_the_engine(ferritin):
    assert kg.explain_alert("ferritin", 18000, "ng/mL", age_years=7) == ferritin


@pytest.mark.parametrize("args, kwargs, message", [
    (("ferriton", 1, "ng/mL"), {}, "unknown code 'ferriton'"),
    (("splenomegaly", 3, "cm"), {}, "'splenomegaly' is not a laboratory test"),
    (("ferritin", 1, "mm/h"), {}, "the alert value cannot be used: unit 'mm/h'"),
    (("ferritin", -5, "ng/mL"), {}, "negative value"),
    (("ferritin", "high", "ng/mL"), {}, "is not a finite number"),
    (("ferritin", 1, "ng/mL"), {"age_years": 200}, "age_years 200 is impossible"),
    (("ferritin", 1, "ng/mL"), {"time": "yesterday"}, "time: unparseable time"),
    (("ferritin", 1, "ng/mL"), {"patient": EXAMPLES / "sjia-mas.json", "age_years": 7}, "not beside it"),
])
def test_bad_alerts_raise_input_error(engine, args, kwargs, message):
    with pytest.raises(kg.InputError) as raised:
        engine.explain_alert(*args, **kwargs)
    assert message in str(raised.value)
