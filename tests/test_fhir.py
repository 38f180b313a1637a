"""FHIR R4 input: a Bundle gives the same patients and reports as the JSON form, and bad input is named."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from fractions import Fraction

import pytest
from fhir.resources.R4B import get_fhir_model_class

from conftest import EXAMPLES, HOSTILE, ROOT, hostile_patient
from conftest import run_cli as run
from fhir_bundles import DUE_TO, HGNC, LOINC, OUR_CODES, SNOMED, UCUM, patient_bundle
from kg.errors import InputError
from kg.fhir import contract_json, looks_like_fhir, read_bundle, read_bundle_file, read_resources

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.json") if p.stem != "expected")
SCENARIOS = sorted(p.stem for p in (ROOT / "tests" / "scenarios").glob("*.json"))
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def scenario(name: str) -> dict:
    return json.loads((ROOT / "tests" / "scenarios" / f"{name}.json").read_text())["patient"]


def verdicts(report) -> dict:
    """What a reader must not change: criteria, candidates, findings, counts, alerts, explanations."""
    data = report.to_dict()
    return {"at": data["at"],
            "criteria": [(c["id"], c["status"], c["score"], c.get("score_range")) for c in data["criteria"]],
            "candidates": [(c["category"], c["rank"], c["score"]) for c in data["candidates"]],
            "findings": [(f["code"], f.get("interpretation"), f.get("present")) for f in data["findings"]],
            "used": data["observations"]["used"], "rejected": len(data["observations"]["rejected"]),
            "given": data["observations"]["given"], "conditions": [c["term"] for c in data["conditions"]],
            "alerts": [a["code"] for a in data["alerts"]], "origin": data["hlh_origin"]["favoured"],
            "explanations": [(e["finding"], len(e["paths"])) for e in data["explanations"]],
            "therapies": data["therapies"], "next_tests": data["next_tests"],
            "medications": [m["therapy"] for m in data["medications"]]}


def validate(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def bundle(*resources, patient: dict | None = None) -> dict:
    """A collection Bundle: a Patient p1 (born 2017-01-01, female) unless ``patient`` says, then ``resources``."""
    head = [patient if patient is not None else {"resourceType": "Patient", "id": "p1", "gender": "female",
                                                   "birthDate": "2017-01-01"}]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in [*head, *resources] if r]}


def lab(code, value, unit, *, system=LOINC, time="2024-07-02T08:00:00Z", rid="o1", subject="Patient/p1", **extra):
    resource = {"resourceType": "Observation", "id": rid, "status": "final",
                "code": {"coding": [{"system": system, "code": code}]},
                "valueQuantity": {"value": value, "system": UCUM, "code": unit}, **extra}
    if time:
        resource["effectiveDateTime"] = time
    if subject:
        resource["subject"] = {"reference": subject}
    return resource


def finding(code, *, rid="f1", system=OUR_CODES, **extra):
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": system, "code": code}]}, "subject": {"reference": "Patient/p1"}, **extra}


def read_one(engine, data):
    [read] = read_bundle(data, kb=engine.kb)
    assert len(read.sources) == read.patient.given == len(read.data["observations"])
    assert len(read.patient.observations) + len(read.patient.rejected) == read.patient.given
    return read


# ---- the same patients and reports as the JSON form

@pytest.mark.parametrize("name", NAMES)
def test_example_bundle_is_valid_r4b_and_gives_the_same_report(engine, name):
    patient = example(name)
    data = patient_bundle(patient)
    validate(data)
    for entry in data["entry"]:
        validate(entry["resource"])
    read = read_one(engine, data)
    assert read.patient.id == patient["id"]
    assert verdicts(engine.explain(read.patient)) == verdicts(engine.explain(patient))
    assert read.patient.notes == engine.read(patient).notes


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_bundles_give_the_same_verdicts(engine, name):
    patient = scenario(name)  # medications with start times, agents, genes, sizes, sites, absent findings
    data = patient_bundle(patient)
    for entry in data["entry"]:
        validate(entry["resource"])
    assert verdicts(engine.explain(read_one(engine, data).patient)) == verdicts(engine.explain(patient))


def test_age_from_birth_date_is_as_close_as_days_allow(engine):
    # 7.2 years is 73 days past the 7th birthday in a 365-day birthday-year, 73.2 in a 366-day one
    exact = read_one(engine, patient_bundle(example("boundary-mas2016")))  # 9.0 years
    assert exact.data["age_years"] == Decimal("9.000000")
    near = read_one(engine, patient_bundle(example("sjia-mas"))).patient.age_years
    assert abs(near - Fraction("7.2")) < Fraction(1, 366) and near != Fraction("7.2")
    infant = read_one(engine, patient_bundle(example("infant-hb"))).patient.age_years
    assert infant * Fraction("365.25") < 28  # still under four weeks: the infant Hb rule applies as in JSON


def test_ebv_infection_round_trips_to_the_same_term_and_candidates(engine):
    patient = example("adult-ebv-hlh")
    read = read_one(engine, patient_bundle(patient))
    assert [c.term for c in read.patient.conditions] == ["mkg:EBVInfection"] == \
        [c.term for c in engine.read(patient).conditions]
    # the other form: the infection with its agent in the condition-dueTo extension
    due_to = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
              "code": {"coding": [{"system": OUR_CODES, "code": "infection"}]},
              "extension": [{"url": DUE_TO, "valueCodeableConcept": {"text": "EBV"}}]}
    read = read_one(engine, bundle(due_to, lab("2276-4", 9000, "ng/mL")))
    assert read.data["conditions"] == [{"code": "infection", "agent": "EBV", "status": "confirmed"}]
    assert read.patient.conditions[0].term == "mkg:EBVInfection"


def test_gene_of_a_molecular_diagnosis(engine):
    read = read_one(engine, patient_bundle(example("infant-prf1")))
    [gene] = [o for o in read.patient.observations if o.gene]
    assert (gene.code, gene.gene, gene.present) == ("hlh-molecular-diagnosis", "PRF1", True)
    component = {"code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
                 "valueCodeableConcept": {"coding": [{"system": HGNC, "code": "HGNC:23147"}]}}  # no display: UNC13D
    read = read_one(engine, bundle(finding("hlh-molecular-diagnosis", valueBoolean=True, component=[component])))
    assert read.patient.observations[0].gene == "UNC13D"


def test_cli_explains_a_bundle_as_an_array_and_other_commands_read_it(tmp_path, engine):
    patients = [example("sjia-mas"), example("sepsis-dic")]
    two = patient_bundle(patients[0])
    two["entry"] += patient_bundle(patients[1])["entry"]
    (tmp_path / "two.json").write_text(json.dumps(two))
    (tmp_path / "one.json").write_text(json.dumps(patient_bundle(patients[0])))
    result = run("explain", "two.json", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    reports = json.loads(result.stdout)
    assert [r["patient"] for r in reports] == ["ex-sjia-mas", "ex-sepsis-dic"]
    for got, patient in zip(reports, patients):
        assert [(c["id"], c["status"], c["score"]) for c in got["criteria"]] == \
            [(c["id"], c["status"], c["score"]) for c in engine.explain(patient).to_dict()["criteria"]]
    assert len(json.loads(run("explain", "one.json", cwd=tmp_path).stdout)) == 1  # an array even for one
    query = run("query", "patient-candidates", "--patient", "two.json", "--param", "patient=ex-sepsis-dic",
                "--format", "json", cwd=tmp_path)
    assert query.returncode == 0 and json.loads(query.stdout)["results"]["bindings"]
    assert run("graph", "--patient", "one.json", "--out", "one.html", cwd=tmp_path).returncode == 0
    assert (tmp_path / "one.html").stat().st_size > 0


# ---- patients and subjects

def test_several_patients_are_told_apart_by_subject(engine):
    data = patient_bundle(example("sjia-mas"))
    other = patient_bundle(example("missing-data"))
    data["entry"] += other["entry"]
    first, second = read_bundle(data, kb=engine.kb)
    assert (first.patient.id, second.patient.id) == ("ex-sjia-mas", "ex-missing-data")
    assert second.patient.given == len(example("missing-data")["observations"])
    # a full URL, with a version, names the same Patient
    data["entry"][-1]["resource"]["subject"] = {"reference": "https://ehr.example.org/fhir/Patient/ex-sjia-mas/_history/2"}
    first, second = read_bundle(data, kb=engine.kb)
    assert second.patient.given == len(example("missing-data")["observations"]) - 1
    assert first.patient.given == len(example("sjia-mas")["observations"]) + 1


@pytest.mark.parametrize("subject, message", [
    (None, "no subject, and the bundle holds several patients"),
    ("Patient/nobody", "subject 'Patient/nobody' names no Patient in the bundle"),
    ("urn:uuid:00000000-0000-0000-0000-000000000000", "names no Patient in the bundle"),
])
def test_with_several_patients_every_resource_must_name_one(engine, subject, message):
    data = bundle(lab("2276-4", 900, "ng/mL"), {"resourceType": "Patient", "id": "p2"})
    data["entry"].append({"resource": lab("2276-4", 900, "ng/mL", rid="o9", subject=subject)})
    with pytest.raises(InputError) as error:
        read_bundle(data, kb=engine.kb)
    assert str(error.value).startswith("entry[3] Observation/o9: ") and message in str(error.value)


def test_one_patient_takes_resources_without_subject_and_fullurl_references(engine):
    data = bundle(lab("2276-4", 900, "ng/mL", subject=None))
    assert read_one(engine, data).patient.given == 1
    wrong = bundle(lab("2276-4", 900, "ng/mL", subject="Patient/p2"))
    with pytest.raises(InputError, match="names no Patient in the bundle"):
        read_bundle(wrong, kb=engine.kb)
    hostile = patient_bundle(hostile_patient())  # no FHIR id: an identifier, referenced by its urn:uuid fullUrl
    assert "id" not in hostile["entry"][0]["resource"]
    assert read_one(engine, hostile).patient.id == HOSTILE[0]


def test_without_a_patient_resource_each_subject_is_a_patient(engine):
    data = bundle(lab("2276-4", 900, "ng/mL", subject="Patient/abc"),
                  lab("777-3", 90, "10*9/L", rid="o2", subject="Patient/xyz"), patient={})
    first, second = read_bundle(data, kb=engine.kb)
    assert (first.patient.id, second.patient.id) == ("abc", "xyz")
    assert first.patient.age_years is None and "age and sex unknown" in first.patient.notes[0]
    [alone] = read_bundle(bundle(lab("2276-4", 900, "ng/mL", subject=None), patient={}), kb=engine.kb)
    assert alone.patient.id == "patient"


def test_engine_reads_a_bundle_of_one_patient_only(engine):
    data = bundle(lab("2276-4", 900, "ng/mL"))
    assert engine.read(data).id == "p1" and engine.explain(data).to_dict()["patient"] == "p1"
    data["entry"].append({"resource": {"resourceType": "Patient", "id": "p2"}})
    data["entry"][1]["resource"]["subject"] = {"reference": "Patient/p1"}
    with pytest.raises(InputError, match="this Bundle holds 2 patients"):
        engine.read(data)
    assert looks_like_fhir(data) and not looks_like_fhir(example("sjia-mas"))


def test_prefetch_resources_are_read_with_their_labels(engine):
    [read] = read_resources([("prefetch.patient", {"resourceType": "Patient", "id": "p1", "birthDate": "2010-07-02"}),
                             ("prefetch.labs.entry[0]", lab("2276-4", 900, "ng/mL"))], kb=engine.kb)
    assert read.sources == ("prefetch.labs.entry[0] Observation/o1",)
    assert read.data["age_years"] == Decimal("14.000000")
    # a search-result Bundle among them gives its entries; the same Patient twice is read once
    search = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"fullUrl": "https://ehr.example.org/fhir/Observation/o1", "resource": lab("2276-4", 900, "ng/mL")},
        {"fullUrl": "https://ehr.example.org/fhir/Patient/p1", "search": {"mode": "include"},
         "resource": {"resourceType": "Patient", "id": "p1", "birthDate": "2010-07-02", "meta": {"versionId": "2"}}},
        {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}}]}
    [read] = read_resources([("prefetch.patient", {"resourceType": "Patient", "id": "p1", "birthDate": "2010-07-02"}),
                             ("prefetch.labs", search)], kb=engine.kb)
    assert read.sources == ("prefetch.labs.entry[0] Observation/o1",)
    assert read.patient.notes == ("1 OperationOutcome resource not read",)
    other = {"resourceType": "Patient", "id": "p1", "birthDate": "2011-07-02"}
    with pytest.raises(InputError, match="a second Patient with the same id and a different gender, birth or death"):
        read_resources([("a", other), ("prefetch.labs", search)], kb=engine.kb)


def test_a_patient_known_only_by_its_full_url(engine):
    data = bundle(lab("2276-4", 900, "ng/mL", subject="Patient/p9"), patient={"resourceType": "Patient"})
    data["entry"][0]["fullUrl"] = "https://ehr.example.org/fhir/Patient/p9"
    data["entry"].append({"resource": {"resourceType": "Patient", "id": "p2"}})
    first, second = read_bundle(data, kb=engine.kb)
    assert (first.patient.id, first.patient.given, second.patient.given) == ("patient", 1, 0)


# ---- observations: codes, status, values

def test_unknown_loinc_is_rejected_with_a_warning_naming_the_entry(tmp_path, engine):
    data = bundle(lab("2276-4", 900, "ng/mL"), lab("9999-9", 1, "ng/mL", rid="obs-3"))
    read = read_one(engine, data)
    assert [(r.index, r.code, r.reason) for r in read.patient.rejected] == \
        [(1, "LOINC:9999-9", "unknown code 'LOINC:9999-9'")]
    (tmp_path / "bundle.json").write_text(json.dumps(data))
    result = run("explain", "bundle.json", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "mas-kg: warning: bundle.json: entry[2] Observation/obs-3 (LOINC:9999-9): unknown code 'LOINC:9999-9'"]
    strict = run("explain", "bundle.json", "--strict", cwd=tmp_path)
    assert strict.returncode == 2 and strict.stdout == ""


def test_code_systems_in_order_and_unknown_systems_kept(engine):
    both = lab("9999-9", 900, "ng/mL")
    both["code"]["coding"].append({"system": OUR_CODES, "code": "ferritin"})
    hp = finding("HP:0001744", system="http://purl.obolibrary.org/obo/hp.owl")
    bare = finding("0001744", rid="f2", system="http://human-phenotype-ontology.org")
    other = lab("abc", 1, "ng/mL", system="http://example.org/local", rid="o3")
    text = {**lab("x", 12, "pg/mL", rid="o4"), "code": {"text": "IL-18"}}
    read = read_one(engine, bundle(both, hp, bare, other, text))
    assert [o.code for o in read.patient.observations] == ["ferritin", "splenomegaly", "splenomegaly", "il-18"]
    assert read.patient.rejected[0].reason == "unknown code 'http://example.org/local|abc'"


@pytest.mark.parametrize("change, reason", [
    ({"status": "entered-in-error"}, "status entered-in-error"),
    ({"status": "registered"}, "status registered"),
    ({"status": "cancelled"}, "status cancelled"),
    ({"dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                       "code": "not-performed"}]}, "valueQuantity": None},
     "dataAbsentReason not-performed"),
    ({"valueQuantity": None, "hasMember": [{"reference": "Observation/o2"}]}, "a panel (component or hasMember)"),
    ({"valueQuantity": None, "valueString": ">20000"}, "valueString is not read"),
    ({"valueQuantity": None, "valueCodeableConcept": {"text": "positive"}}, "is neither a number nor present/absent"),
    ({"status": "bogus"}, "status bogus"),
    ({"code": {"coding": [{"system": LOINC, "code": "2276-4"}]}, "issued": "yesterday"}, "invalid Observation: issued"),
    ({"valueQuantity": {"value": "lots", "unit": "ng/mL"}}, "invalid Observation: valueQuantity.value"),
])
def test_unusable_observations_are_rejected_with_their_reason(engine, change, reason):
    observation = {k: v for k, v in {**lab("2276-4", 900, "ng/mL"), **change}.items() if v is not None}
    read = read_one(engine, bundle(observation, lab("777-3", 90, "10*9/L", rid="o2")))
    [rejected] = read.patient.rejected
    assert rejected.index == 0 and reason in rejected.reason and "\n" not in rejected.reason
    assert rejected.code == "LOINC:2276-4" and [o.code for o in read.patient.observations] == ["platelets"]
    assert read.data["observations"][0]["present"] is None  # the contract object alone rejects it too
    assert engine.read(read.data).rejected[0].index == 0


def test_statuses_that_are_used(engine):
    statuses = ["final", "amended", "corrected", "preliminary"]
    read = read_one(engine, bundle(*[lab("2276-4", 900, "ng/mL", rid=f"o{i}", status=s)
                                     for i, s in enumerate(statuses)]))
    assert len(read.patient.observations) == 4 and not read.patient.rejected


def test_units_ucum_code_else_unit_text(engine):
    ucum = lab("2571-8", 200, "mg/dL", valueQuantity={"value": 200, "unit": "milligram per deciliter",
                                                     "system": UCUM, "code": "mg/dL"})
    text = lab("2571-8", 2, "x", rid="o2", valueQuantity={"value": 2.5, "unit": "mmol/l"})
    iu = lab("1920-8", 300, "[IU]/L", rid="o3")
    unknown = lab("1742-6", 300, "x", rid="o4", valueQuantity={"value": 300, "unit": "furlongs"})
    read = read_one(engine, bundle(ucum, text, iu, unknown))
    assert [(o.code, o.unit) for o in read.patient.observations] == \
        [("triglycerides", "mg/dL"), ("triglycerides", "mmol/L"), ("ast", "U/L")]
    assert read.patient.rejected[0].reason == "unknown unit 'furlongs' for alt"


def test_comparator_and_exact_decimals(tmp_path, engine):
    censored = lab("2276-4", 20000, "ng/mL", valueQuantity={"value": 20000, "comparator": ">", "system": UCUM,
                                                           "code": "ng/mL"})
    read = read_one(engine, bundle(censored))
    assert read.patient.observations[0].comparator == ">"
    # 684.0000000000000001 ng/mL is above the 2016 cut-off of 684; as a float it would be 684.0, not above
    file = tmp_path / "b.json"
    sjia = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://purl.obolibrary.org/obo/mondo.owl", "code": "MONDO:0019434"}]}}
    file.write_text(json.dumps(bundle(sjia, lab("2276-4", 1, "ng/mL"))).replace('"value": 1,',
                                                                                  '"value": 684.0000000000000001,'))
    [read] = read_bundle_file(file, kb=engine.kb)
    assert read.patient.observations[0].value == Fraction("684.0000000000000001")
    items = {i["id"]: i["status"] for i in engine.explain(read.patient).criterion("mas2016")["items"]}
    assert items["mas2016.ferritin"] == "met"
    assert '"value": 684.0000000000000001' in contract_json(read.data)
    assert json.loads(contract_json(read.data), parse_float=Decimal)["observations"][0]["value"] == \
        Decimal("684.0000000000000001")


def test_findings_boolean_coded_sized_and_timed(engine):
    observations = [
        finding("fever", effectiveInstant="2024-07-02T08:00:00.000Z"),  # no value: an observation asserts it
        finding("rash", rid="f2", valueBoolean=False),
        finding("lymphadenopathy", rid="f3", valueCodeableConcept={"coding": [{"system": SNOMED, "code": "2667000"}]}),
        finding("hepatomegaly", rid="f4", valueCodeableConcept={"coding": [{"system": LOINC, "code": "LA9633-4"}]},
                effectivePeriod={"start": "2024-07-01T00:00:00Z", "end": "2024-07-02T00:00:00Z"}),
        finding("splenomegaly", rid="f5", valueQuantity={"value": 3, "unit": "cm", "system": UCUM, "code": "cm"}),
        finding("hemophagocytosis", rid="f6", valueBoolean=True,
                bodySite={"coding": [{"system": "http://purl.obolibrary.org/obo/uberon.owl", "code": "UBERON:0002371"}]}),
    ]
    read = read_one(engine, bundle(*observations))
    got = [(o.code, o.present, o.value, o.site, o.time.isoformat() if o.time else None)
           for o in read.patient.observations]
    assert got == [("fever", True, None, None, "2024-07-02T08:00:00+00:00"),
                   ("rash", False, None, None, None), ("lymphadenopathy", False, None, None, None),
                   ("hepatomegaly", True, None, None, "2024-07-01T00:00:00+00:00"),
                   ("splenomegaly", True, Fraction(3), None, None),
                   ("hemophagocytosis", True, None, "mkg:BoneMarrow", None)]


def test_laboratory_flag_and_reference_range_are_honoured(engine):
    flagged = lab("1988-5", 80, "mg/L", interpretation=[{"coding": [{"system": INTERPRETATION, "code": "N"}]}])
    ranged = lab("3255-7", 2.5, "g/L", rid="o2", referenceRange=[
        {"low": {"value": 4, "system": UCUM, "code": "g/L"}, "high": {"value": 6, "system": UCUM, "code": "g/L"},
         "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
                              "code": "treatment"}]}},
        {"low": {"value": 3, "system": UCUM, "code": "g/L"}, "appliesTo": [{"coding": [{"code": "male"}]}]},
        {"low": {"value": 3, "system": UCUM, "code": "g/L"}, "high": {"value": 5, "system": UCUM, "code": "g/L"}}])
    odd = lab("718-7", 120, "g/L", rid="o3", interpretation=[{"coding": [{"system": INTERPRETATION, "code": "POS"}]}])
    read = read_one(engine, bundle(flagged, ranged, odd))
    assert read.data["observations"][1]["reference_range"] == {"low": 3, "high": 5, "unit": "g/L"}
    findings = {f["code"]: f for f in engine.explain(read.patient).to_dict()["findings"]}
    assert findings["crp"]["interpretation"] == "normal"  # 80 mg/L is high by the ontology; the laboratory says N
    assert findings["fibrinogen"]["interpretation"] == "low"  # 2.5 g/L is normal by the ontology, low here
    assert any("interpretation" in n and "POS" in n for n in read.patient.notes)


def test_reference_range_in_two_units_rejects_the_observation(engine):
    mixed = lab("3255-7", 2.5, "g/L", referenceRange=[{"low": {"value": 3, "system": UCUM, "code": "g/L"},
                                                       "high": {"value": 500, "system": UCUM, "code": "mg/dL"}}])
    [rejected] = read_one(engine, bundle(mixed)).patient.rejected
    assert rejected.reason == "referenceRange low and high in different units (g/L, mg/dL)"


def test_reference_range_by_age(engine):
    def ranged(low_age, high_age):
        return lab("3255-7", 2.5, "g/L", referenceRange=[
            {"low": {"value": 3, "system": UCUM, "code": "g/L"},
             "age": {"low": {"value": low_age, "system": UCUM, "code": "a"},
                     "high": {"value": high_age, "system": UCUM, "code": "a"}}}])
    assert "reference_range" in read_one(engine, bundle(ranged(5, 10))).data["observations"][0]  # aged 7.5
    assert "reference_range" not in read_one(engine, bundle(ranged(10, 18))).data["observations"][0]


# ---- the patient

def test_age_from_birth_date(engine):
    def age(birth, time="2024-05-02T10:00:00Z"):
        patient = {"resourceType": "Patient", "id": "p1", "birthDate": birth}
        return read_one(engine, bundle(lab("2276-4", 900, "ng/mL", time=time), patient=patient))
    assert age("2006-05-02").data["age_years"] == Decimal("18.000000")  # the 18th birthday
    assert age("2006-05-03").data["age_years"] == Decimal("17.997267")  # 365/366 (29 Feb 2024) of the year
    assert age("2024-05-02").data["age_years"] == Decimal("0.000000")
    assert age("2016-02-29", "2023-02-28").data["age_years"] == Decimal("7.000000")
    partial = age("2006-05")
    assert partial.patient.age_years is None and any("partial" in n for n in partial.patient.notes)
    with pytest.raises(InputError, match="birthDate after the observation"):
        age("2024-05-03")
    untimed = bundle(lab("2276-4", 900, "ng/mL", time=None), patient={"resourceType": "Patient", "id": "p1",
                                                                      "birthDate": "2014-01-01"})
    assert read_one(engine, untimed).patient.age_years is None
    untimed["timestamp"] = "2024-01-01T00:00:00Z"
    assert read_one(engine, untimed).data["age_years"] == Decimal("10.000000")


def test_deceased_before_the_observation_is_bad_input(engine):
    patient = {"resourceType": "Patient", "id": "p1", "deceasedDateTime": "2024-07-01T00:00:00Z"}
    with pytest.raises(InputError, match="an observation after deceasedDateTime"):
        read_bundle(bundle(lab("2276-4", 900, "ng/mL"), patient=patient), kb=engine.kb)


# ---- conditions and medications

def test_condition_verification_and_clinical_status(engine):
    def condition(rid, verification=None, clinical=None, coding=None, text=None):
        resource = {"resourceType": "Condition", "id": rid, "subject": {"reference": "Patient/p1"},
                    "code": {"coding": coding or [{"system": SNOMED, "code": "201796004"}]}}
        if text:
            resource["code"]["text"] = text
        if verification:
            resource["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
        if clinical:
            resource["clinicalStatus"] = {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]}
        return resource
    sepsis = [{"system": "http://example.org/local", "code": "S1", "display": "Sepsis"}]
    read = read_one(engine, bundle(
        condition("c1"), condition("c2", "provisional"), condition("c3", "differential", coding=sepsis),
        condition("c4", "refuted"), condition("c5", "entered-in-error"), condition("c6", "confirmed", "resolved"),
        condition("c7", "unconfirmed", coding=[{"system": "http://example.org/x", "code": "y"}], text="AOSD"),
        lab("2276-4", 900, "ng/mL")))
    assert read.data["conditions"] == [{"code": "sJIA", "status": "confirmed"}, {"code": "sJIA", "status": "suspected"},
                                       {"code": "sepsis", "status": "suspected"},
                                       {"code": "sJIA", "status": "confirmed"}, {"code": "AOSD", "status": "suspected"}]
    notes = "\n".join(read.patient.notes)
    assert "entry[4] Condition/c4: 'sJIA' refuted, not used" in notes
    assert "entry[5] Condition/c5: 'sJIA' entered-in-error, not used" in notes
    assert "entry[6] Condition/c6: 'sJIA' is resolved" in notes
    unknown = read_one(engine, bundle(condition("c1", coding=[{"system": "http://x.org", "code": "z"}]),
                                      lab("2276-4", 900, "ng/mL")))
    assert unknown.patient.conditions == () and "unknown condition 'http://x.org|z' ignored" in unknown.patient.notes[0]


def test_medications_statements_and_requests(engine):
    medication = {"resourceType": "Medication", "id": "m1",
                  "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1007",
                                       "display": "Anakinra"}]}}
    request = {"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/m1"},
               "authoredOn": "2024-07-01T12:00:00Z"}
    contained = {"resourceType": "MedicationRequest", "id": "r2", "status": "completed", "intent": "order",
                 "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "#med"},
                 "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "ciclosporin"}}]}
    cancelled = {**request, "id": "r3", "status": "cancelled"}
    statement = {"resourceType": "MedicationStatement", "id": "s1", "status": "stopped",
                 "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "methylprednisolone"},
                 "effectivePeriod": {"start": "2024-06-30T08:00:00Z"}}
    not_taken = {**statement, "id": "s2", "status": "not-taken"}
    read = read_one(engine, bundle(medication, request, contained, cancelled, statement, not_taken,
                                   lab("2276-4", 900, "ng/mL")))
    assert read.data["medications"] == [{"code": "Anakinra", "start": "2024-07-01T12:00:00Z"}, {"code": "ciclosporin"},
                                        {"code": "methylprednisolone", "start": "2024-06-30T08:00:00Z"}]
    assert [m.term for m in read.patient.medications] == ["mkg:Anakinra", "mkg:Cyclosporine",
                                                      "mkg:HighDoseGlucocorticoids"]
    notes = "\n".join(read.patient.notes)
    assert "entry[4] MedicationRequest/r3: 'Anakinra' status cancelled, not listed" in notes
    assert "entry[5] MedicationStatement/s1: 'methylprednisolone' status stopped; listed" in notes
    assert "entry[6] MedicationStatement/s2: 'methylprednisolone' status not-taken, not listed" in notes


def test_resources_not_read_are_counted_in_a_note(engine):
    encounters = [{"resourceType": "Encounter", "id": f"e{i}", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}}
                  for i in range(3)]
    read = read_one(engine, bundle(*encounters, {"resourceType": "OperationOutcome", "issue": []},
                                   lab("2276-4", 900, "ng/mL")))
    assert read.patient.notes[:2] == ("3 Encounter resources not read", "1 OperationOutcome resource not read")
    assert "3 Encounter resources not read" in engine.explain(read.patient).to_text()


# ---- hostile text and bad input

def test_hostile_strings_survive_as_data(engine):
    read = read_one(engine, patient_bundle(hostile_patient()))
    report = engine.explain(read.patient)
    assert report.to_dict()["patient"] == HOSTILE[0]
    assert [r.code for r in read.patient.rejected][0] == HOSTILE[3]
    assert read.data["medications"] == [{"code": HOSTILE[2]}]
    assert "<script>window.__xss" not in report.to_html()


@pytest.mark.parametrize("text, message", [
    ('{"resourceType": "Bundle", "type": "collection", "entry": [', "b.json: not valid JSON"),
    ('{"resourceType": "Bundle", "type": "collection"}', "b.json: a Bundle without entries"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": []}', "b.json: a Bundle without entries"),
    ('{"resourceType": "Bundle", "type": "collection", "timestamp": "yesterday", "entry": [{"resource": '
     '{"resourceType": "Patient"}}]}', "b.json: invalid Bundle: timestamp"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", '
     '"id": "p1", "gender": "woman"}}]}', "b.json: entry[0] Patient/p1: sex must be female, male, other or unknown"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", '
     '"id": "p1", "active": "maybe"}}]}', "b.json: entry[0] Patient/p1: invalid Patient: active"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", '
     '"id": "p1", "birthDate": "2020-13-01"}}]}', "b.json: entry[0] Patient/p1: invalid Patient: birthDate"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Encounter", '
     '"status": "finished", "class": {"code": "IMP"}}}]}', "b.json: no Patient, Observation, Condition"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", '
     '"id": "p1"}}]}', "b.json: no usable observation for patient p1"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Condition", '
     '"id": "c1", "code": {"text": "sJIA"}}}]}', "b.json: entry[0] Condition/c1: invalid Condition: subject"),
])
def test_bad_bundles_are_one_line_and_exit_2(tmp_path, text, message):
    (tmp_path / "b.json").write_text(text)
    result = run("explain", "b.json", "--out", "r.json", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("mas-kg: error: ") and message in line
    assert not (tmp_path / "r.json").exists()


def test_every_observation_given_is_used_or_rejected(engine):
    data = patient_bundle(example("sjia-flare"))
    observations = [e for e in data["entry"] if e["resource"]["resourceType"] == "Observation"]
    broken = copy.deepcopy(observations[:4])
    for i, entry in enumerate(broken):
        entry["resource"]["id"] = f"broken-{i}"
    broken[0]["resource"]["status"] = "entered-in-error"
    broken[1]["resource"]["code"]["coding"][0]["code"] = "0000-0"
    broken[2]["resource"]["valueQuantity"] = {"value": 1, "comparator": "~", "system": UCUM, "code": "ng/mL"}
    broken[3]["resource"]["effectiveDateTime"] = "yesterday"
    data["entry"] += broken
    read = read_one(engine, data)
    assert read.patient.given == len(observations) + 4 == len(read.patient.observations) + len(read.patient.rejected)
    assert [read.sources[r.index] for r in read.patient.rejected][-4:] == \
        [f"entry[{len(data['entry']) - 4 + i}] Observation/broken-{i}" for i in range(4)]
