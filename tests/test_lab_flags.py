"""The reporting laboratory's reference range and flag (a FHIR referenceRange / interpretation) are honoured."""

from __future__ import annotations

from conftest import patient


def _finding(engine, observation, **extra):
    report = engine.explain(patient([observation], **extra)).to_dict()
    assert not report["observations"]["rejected"], report["observations"]["rejected"]
    return next(f for f in report["findings"] if f["code"] == observation["code"])


def test_ontology_range_without_laboratory_information(engine):
    found = _finding(engine, {"code": "fibrinogen", "value": 180, "unit": "mg/dL"})  # 200-400 mg/dL at 6-10 years
    assert found["interpretation"] == "low" and found["interpretation_basis"] == "reference range"
    assert found["reference_range"]["low"] == 200 and found["reference_range"]["unit"] == "mg/dL"


def test_laboratory_range_replaces_the_ontology_range_in_its_own_unit(engine):
    # 180 mg/dL is below the ontology's 200 mg/dL for a 7-year-old, inside this laboratory's 1.5-4 g/L
    found = _finding(engine, {"code": "fibrinogen", "value": 180, "unit": "mg/dL",
                              "reference_range": {"low": 1.5, "high": 4, "unit": "g/L"}})
    assert found["interpretation"] == "normal" and found["interpretation_basis"] == "reference range"
    assert found["reference_range"] == {"low": 1.5, "high": 4, "unit": "g/L",
                                        "source": "the reporting laboratory's reference range"}
    low = _finding(engine, {"code": "fibrinogen", "value": 250, "unit": "mg/dL",
                            "reference_range": {"low": 3, "high": 5, "unit": "g/L"}})
    assert low["interpretation"] == "low" and low["phenotype"] == "HP:0011900"  # hypofibrinogenemia


def test_laboratory_range_unit_defaults_to_the_value_unit(engine):
    found = _finding(engine, {"code": "ferritin", "value": 400, "unit": "ng/mL", "reference_range": {"high": 300}})
    assert found["interpretation"] == "high"


def test_laboratory_flag_wins_and_a_conflict_is_noted(engine):
    found = _finding(engine, {"code": "crp", "value": 8, "unit": "mg/L", "interpretation": "normal"})
    assert found["interpretation"] == "normal" and found["interpretation_basis"] == "laboratory flag"
    assert "the laboratory flagged it normal; against the reference range it is high" in found["note"]
    agreeing = _finding(engine, {"code": "crp", "value": 8, "unit": "mg/L", "interpretation": "high"})
    assert agreeing["interpretation"] == "high" and "note" not in agreeing


def test_abnormal_flag_takes_its_direction_from_the_range(engine):
    high = _finding(engine, {"code": "crp", "value": 80, "unit": "mg/L", "interpretation": "abnormal"})
    assert high["interpretation"] == "high"
    undecided = _finding(engine, {"code": "crp", "value": 3, "unit": "mg/L", "interpretation": "abnormal"})
    assert undecided["interpretation"] is None and "without a direction" in undecided["note"]


def test_the_laboratory_flag_feeds_the_explanations(engine):
    report = engine.explain(patient([{"code": "crp", "value": 3, "unit": "mg/L", "interpretation": "high"}])).to_dict()
    assert [e["finding"] for e in report["explanations"]] == ["crp"]


def test_bad_laboratory_information_rejects_the_observation_with_its_reason(engine):
    cases = [({"interpretation": "H"}, "interpretation 'H' is not one of high, low, normal, abnormal"),
             ({"reference_range": {}}, "reference_range must be an object with a low and/or a high"),
             ({"reference_range": {"low": 5, "high": 1}}, "reference_range low 5 is above its high 1"),
             ({"reference_range": {"low": "x"}}, "reference_range.low 'x' is not a finite number"),
             ({"reference_range": {"low": 1, "unit": "mm/h"}}, "reference_range:")]
    for extra, reason in cases:
        report = engine.explain(patient([{"code": "crp", "value": 3, "unit": "mg/L", **extra},
                                         {"code": "ferritin", "value": 300, "unit": "ng/mL"}])).to_dict()
        rejected = report["observations"]["rejected"]
        assert len(rejected) == 1 and rejected[0]["index"] == 0 and reason in rejected[0]["reason"], (extra, rejected)


def test_laboratory_information_is_kept_on_the_observation(engine):
    report = engine.explain(patient([{"code": "crp", "value": 3, "unit": "mg/L", "interpretation": "high",
                                      "reference_range": {"high": 2.5}}])).to_dict()
    item = report["observations"]["items"][0]
    assert item["interpretation"] == "high" and item["reference_range"] == {"low": None, "high": 2.5, "unit": "mg/L"}


def test_what_decided_the_interpretation_is_in_the_rdf(engine):
    report = engine.explain(patient([{"code": "crp", "value": 3, "unit": "mg/L", "interpretation": "high"},
                                     {"code": "ferritin", "value": 400, "unit": "ng/mL",
                                      "reference_range": {"high": 300}}]))
    rows = report.to_rdf().query("""
        PREFIX mkr: <https://w3id.org/mas-kg/report/>
        SELECT ?code ?basis ?source WHERE { GRAPH ?g {
          ?f a mkr:Finding ; mkr:code ?code ; mkr:interpretationBasis ?basis .
          OPTIONAL { ?f mkr:referenceRangeSource ?source } } }""")
    found = {str(r.code): (str(r.basis), r.source and str(r.source)) for r in rows}
    assert found["crp"][0] == "laboratory flag" and found["crp"][1]  # the ontology range it was also held against
    assert found["ferritin"] == ("reference range", "the reporting laboratory's reference range")
