"""Candidate ranking, primary vs secondary HLH, therapies and what to test next."""

from __future__ import annotations

import json
import random

import pytest

import kg
from conftest import ontology_copy, patient


def lab(code, value, unit, **extra):
    return {"code": code, "value": value, "unit": unit, **extra}


FLARE = [lab("platelets", 640, "10*9/L"), lab("fibrinogen", 6.4, "g/L"), lab("esr", 95, "mm/h"),
         lab("crp", 140, "mg/L"), lab("ferritin", 900, "ng/mL"), {"code": "fever", "present": True}]
MAS = [lab("platelets", 95, "10*9/L"), lab("fibrinogen", 1.3, "g/L"), lab("esr", 9, "mm/h"),
       lab("crp", 110, "mg/L"), lab("ferritin", 16000, "ng/mL"), lab("ast", 190, "U/L"),
       {"code": "fever", "present": True}]


def ranking(report):
    return [c["category"] for c in report.to_dict()["candidates"]]


def test_the_signature_tells_a_flare_from_mas(engine):
    flare, mas = engine.explain(patient(FLARE)), engine.explain(patient(MAS))
    assert ranking(flare)[0] == "disease_flare" and ranking(mas)[0] == "mas"
    against_mas = next(c for c in flare.to_dict()["candidates"] if c["category"] == "mas")["against"]
    assert any(text.startswith("platelets high") and "predicts low" in text for text in against_mas)


def test_every_category_is_ranked_once_with_contract_keys(engine):
    candidates = engine.explain(patient(MAS)).to_dict()["candidates"]
    assert sorted(c["category"] for c in candidates) == sorted(
        ["mas", "primary_hlh", "infection_hlh", "malignancy_hlh", "disease_flare", "sepsis_dic"])
    assert [c["rank"] for c in candidates] == [1, 2, 3, 4, 5, 6]
    assert [c["score"] for c in candidates] == sorted((c["score"] for c in candidates), reverse=True)
    mas = candidates[0]
    assert mas["id"] == "MONDO:0015545" and mas["label"] == "macrophage activation syndrome"
    for key in ("supporting", "against", "evidence", "open"):
        assert isinstance(mas[key], list)


def test_ranking_is_deterministic_and_ignores_input_order(engine):
    first = engine.explain(patient(MAS)).to_dict()["candidates"]
    shuffled = list(MAS)
    random.Random(4).shuffle(shuffled)
    again = engine.explain(patient(shuffled)).to_dict()["candidates"]
    assert json.dumps(first) == json.dumps(again)


def test_an_undecided_criteria_set_is_open_not_evidence(engine):
    """sJIA with fever and ferritin alone: the 2016 criteria are indeterminate, so they count neither way."""
    report = engine.explain(patient([{"code": "fever", "present": True}, lab("ferritin", 15000, "ng/mL")])).to_dict()
    mas = next(c for c in report["candidates"] if c["category"] == "mas")
    assert not any(e["rule"].startswith("mas2016") for e in mas["evidence"])
    assert any(o["criterion"] == "mas2016" for o in mas["open"])
    tests = {t["test"] for t in report["next_tests"]}
    assert {"platelets", "fibrinogen"} <= tests


def test_a_censored_ferritin_counts_only_where_it_decides(engine):
    def level(obs):
        report = engine.explain(patient([obs])).to_dict()
        mas = next(c for c in report["candidates"] if c["category"] == "mas")
        return [e for e in mas["evidence"] if e["kind"] == "level"], [o for o in mas["open"] if o["kind"] == "level"]
    held, _ = level(lab("ferritin", 20000, "ng/mL", comparator=">"))
    assert held and held[0]["text"].endswith(">20000 ng/mL")
    held, open_ = level(lab("ferritin", 20000, "ng/mL", comparator="<"))
    assert not held and open_
    held, open_ = level(lab("ferritin", 9000, "ng/mL", comparator="<"))
    assert not held and not open_


def test_primary_hlh_when_the_gene_decides_even_with_ebv(engine):
    data = patient(MAS[:5] + [{"code": "hlh-molecular-diagnosis", "present": True, "gene": "SH2D1A"}],
                   conditions=(("infection", "confirmed"),), age=4, sex="male")
    data["conditions"][0]["agent"] = "EBV"
    report = engine.explain(data).to_dict()
    assert report["candidates"][0]["category"] == "primary_hlh"
    origin = report["hlh_origin"]
    assert origin["favoured"] == "primary"
    assert origin["genes"][0]["diseases"][0]["id"] == "mkg:XLP1"
    assert any("SH2D1A" in text for text in origin["basis"])


def test_secondary_hlh_when_genetics_are_negative(engine):
    data = patient(MAS[:5] + [{"code": "hlh-molecular-diagnosis", "present": False}],
                   conditions=(("infection", "confirmed"),), age=34)
    report = engine.explain(data).to_dict()
    assert report["candidates"][0]["category"] == "infection_hlh"
    assert report["hlh_origin"]["favoured"] == "secondary"
    assert report["hlh_origin"]["genetic_testing"] == "reported"


def test_no_primary_vs_secondary_question_in_a_plain_flare(engine):
    assert engine.explain(patient(FLARE)).to_dict()["hlh_origin"]["favoured"] == "not_hlh"


def test_weights_are_read_from_the_ontology(tmp_path):
    """Change one weight in a copy of the ontology and the ranking follows."""
    copy = ontology_copy(tmp_path)
    engine = kg.Engine(ontology=copy)
    before = ranking(engine.explain(patient(FLARE)))
    text = (copy / "candidates.ttl").read_text()
    start = text.index("ev:sig-flare-platelets-high")
    block_end = text.index(" .\n", start)
    block = text[start:block_end]
    changed = block.replace("mkg:weight 3", "mkg:weight -30")
    assert changed != block
    (copy / "candidates.ttl").write_text(text[:start] + changed + text[block_end:])
    after = ranking(kg.Engine(ontology=copy).explain(patient(FLARE)))
    assert before[0] == "disease_flare" and after[0] != "disease_flare"


def test_therapies_name_what_they_interrupt_and_the_labs_that_would_show_it(engine):
    report = engine.explain(patient(MAS + [lab("d-dimer", 9, "mg/L")]),).to_dict()
    therapies = {t["therapy"]: t for t in report["therapies"]}
    anakinra = therapies["mkg:Anakinra"]
    assert [i["node"] for i in anakinra["interrupts"]] == ["mkg:IL1B"]
    markers = {m["code"]: m["expected"] for m in anakinra["response_markers"]}
    assert markers["fibrinogen"] == "rises" and markers["d-dimer"] == "falls"
    assert "mkg:IL1Blockade" not in therapies  # the named agent stands for its class
    assert all(f["sources"] for t in report["therapies"] for f in t["for"])
    for marker in anakinra["response_markers"]:
        assert marker["path"].startswith("anakinra")


def test_hsct_is_offered_for_primary_hlh_only(engine):
    infant = patient(MAS[:5] + [{"code": "hlh-molecular-diagnosis", "present": True, "gene": "PRF1"}],
                     conditions=(), age=0.3)
    therapies = {t["therapy"]: t for t in engine.explain(infant).to_dict()["therapies"]}
    assert [f["candidate"] for f in therapies["mkg:HSCT"]["for"]] == ["primary_hlh"]
    flare = {t["therapy"] for t in engine.explain(patient(FLARE)).to_dict()["therapies"]}
    assert "mkg:HSCT" not in flare


def test_medications_name_therapies_and_unknown_ones_are_noted(engine):
    report = engine.explain(patient(MAS, medications=[{"code": "Anakinra", "start": "2024-03-01"},
                                                      {"code": "paracetamol"}])).to_dict()
    assert [m["therapy"] for m in report["medications"]] == ["mkg:Anakinra", None]
    assert any("paracetamol" in n for n in report["notes"])
    assert next(t for t in report["therapies"] if t["therapy"] == "mkg:Anakinra")["on_therapy"]
    with pytest.raises(kg.InputError, match=r"medications\[0\]\.start"):
        engine.explain(patient(MAS, medications=[{"code": "anakinra", "start": "yesterday"}]))


def test_consult_note_reads_in_order(engine):
    text = engine.explain(patient(MAS)).to_text()
    order = ["ASSESSMENT", "CRITERIA AND SCORES", "WHY EACH ABNORMAL FINDING", "THERAPIES", "WHAT TO TEST NEXT"]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    assert "1. macrophage activation syndrome [mas]" in text
    assert "not dosing advice" in text


def test_a_therapy_given_as_an_observation_is_rejected_with_its_place(engine):
    report = engine.explain(patient(MAS + [{"code": "anakinra", "present": True}])).to_dict()
    rejected = report["observations"]["rejected"]
    assert len(rejected) == 1 and "put it under 'medications'" in rejected[0]["reason"]
    assert report["observations"]["used"] + len(rejected) == report["observations"]["given"]
