"""The command line, run as a user would (subprocess), on examples and on bad input."""

import json

import pytest

from conftest import EXAMPLES, ontology_copy
from conftest import run_cli as run

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.json") if p.name != "expected.json")



@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_explain_every_example(name):
    result = run("explain", str(EXAMPLES / name), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "mas-kg/report/v1"
    assert {c["id"] for c in report["criteria"]} >= {"hlh2004", "mas2016"}
    assert report["observations"]["used"] + len(report["observations"]["rejected"]) == report["observations"]["given"]
    text = run("explain", str(EXAMPLES / name), "--format", "text")
    assert text.returncode == 0 and "hlh2004" in text.stdout


def bad(tmp_path, content, name="p.json"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return run("explain", str(path))


@pytest.mark.parametrize("content", [
    "{not json", b"\xff\xfe\x00", "[]", '{"observations": 3}', '{"age_years": -1, "observations": []}',
    '{"age_years": "seven", "observations": []}', '{"observations": []}',
    '{"observations": [{"code": "ferriton", "value": 1, "unit": "ng/mL"}]}', '{"observations": [{"code": "ferritin", "value": NaN, "unit": "ng/mL"}]}',
])
def test_bad_files_exit_2_with_one_line_and_no_stdout(tmp_path, content):
    result = bad(tmp_path, content)
    assert result.returncode == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("mas-kg: error")]
    assert len(errors) == 1 and "p.json" in errors[0]
    assert "Traceback" not in result.stderr


def test_bad_observations_are_rejected_and_the_rest_evaluated(tmp_path):
    data = {"id": "x", "age_years": 7, "conditions": [{"code": "sJIA"}], "observations": [
        {"code": "ferritin", "value": 12000, "unit": "ng/mL"},
        {"code": "ferriton", "value": 1, "unit": "ng/mL"},
        {"code": "platelets", "value": 95, "unit": "mg/dL"},
        {"code": "fibrinogen", "value": 1.2, "unit": "furlongs"},
        {"code": "ast", "value": -3, "unit": "U/L"},
        {"code": "crp", "value": 80, "unit": "mg/L", "time": "yesterday"},
    ]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    result = run("explain", str(path))
    assert result.returncode == 0
    report = json.loads(result.stdout)
    rejected = {r["index"]: r["reason"] for r in report["observations"]["rejected"]}
    assert set(rejected) == {1, 2, 3, 4, 5} and report["observations"]["used"] == 1
    assert "unknown code" in rejected[1] and "not a number-concentration" in rejected[2]
    assert len([line for line in result.stderr.splitlines() if "warning" in line]) == 5
    strict = run("explain", str(path), "--strict")
    assert strict.returncode == 2 and strict.stdout == ""


def test_out_writes_the_file_and_only_the_file(tmp_path):
    out = tmp_path / "report.json"
    result = run("explain", str(EXAMPLES / "sjia-mas.json"), "--out", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert json.loads(out.read_text())["patient"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


@pytest.mark.slow
def test_check_passes_on_the_ontology():
    result = run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout


def test_check_fails_on_a_broken_copy(tmp_path):
    copy = ontology_copy(tmp_path)
    causal = copy / "causal.ttl"
    text = causal.read_text()
    # drop the provenance of one edge and the label of one class
    text = text.replace('oio:source "seed:000_dd113e697ab5fe51#The Falling ESR: A Lesson in Fluid Dynamics" ;\n'
                        '   biolink:knowledge_level "knowledge_assertion" ; biolink:agent_type "manual_agent" ;\n'
                        '   rdfs:comment "Fibrinogen is the glue', 'rdfs:comment "Fibrinogen is the glue', 1)
    causal.write_text(text)
    mech = copy / "mechanisms.ttl"
    mech.write_text(mech.read_text().replace('rdfs:label "rouleaux formation" ;', "", 1))
    result = run("check", "--ontology", str(copy), "--no-reasoner")
    assert result.returncode == 1
    assert "mkg:Fibrinogen" in result.stdout and "no source" in result.stdout
    assert "mkg:RouleauxFormation: no rdfs:label" in result.stdout
    syntax = copy / "labs.ttl"
    syntax.write_text(syntax.read_text() + "\nthis is not turtle .\n")
    result = run("check", "--ontology", str(copy), "--no-reasoner")
    assert result.returncode == 1 and "parse" in result.stdout and "labs.ttl" in result.stdout


def test_check_catches_broken_criteria(tmp_path):
    copy = ontology_copy(tmp_path)
    hscore = copy / "criteria" / "hscore.ttl"
    text = hscore.read_text()
    text = text.replace('mkg:comparator ">" ; mkg:threshold "6000"', 'mkg:comparator "=>" ; mkg:threshold "6000"', 1)
    text = text.replace('mkg:analyte mkg:TriglycerideTest ; mkg:unit "mmol/L"', 'mkg:analyte mkg:TriglycerideTest ; mkg:unit "s"', 1)
    hscore.write_text(text)
    text = hscore.read_text().replace('mkg:combination "sum" ; mkg:comparator ">="', 'mkg:combination "sum" ; mkg:comparator "<"', 1)
    hscore.write_text(text)
    ms = copy / "criteria" / "ms_score.ttl"
    ms.write_text(ms.read_text().replace('mkg:coefficient "0.001"^^xsd:decimal', "", 1))
    parodi = copy / "criteria" / "parodi2009.ttl"
    parodi.write_text(parodi.read_text().replace('mkg:analyte mkg:TemperatureTest ; mkg:comparator ">"',
                                                 'mkg:analyte mkg:TemperatureTest ; mkg:comparator "<"', 1))
    result = run("check", "--ontology", str(copy), "--no-reasoner")
    assert result.returncode == 1
    assert "hscore.ferritin: comparator '=>'" in result.stdout
    assert "hscore.triglycerides: unit s cannot be compared" in result.stdout
    assert "ms_score.score: every operand of a linear formula needs a coefficient" in result.stdout
    assert "hscore.total: a sum's cut-off must be > or >=" in result.stdout
    assert "parodi2009.fever: a measured rule must be a lower bound" in result.stdout


def test_malformed_criteria_data_is_a_clear_error(tmp_path):
    copy = ontology_copy(tmp_path)
    hscore = copy / "criteria" / "hscore.ttl"
    hscore.write_text(hscore.read_text().replace('mkg:threshold "38.4"^^xsd:decimal ; ', "", 1))
    result = run("check", "--ontology", str(copy), "--no-reasoner")
    assert result.returncode == 1 and "criteria cannot be compiled" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_catches_broken_ranking_knowledge(tmp_path):
    """A signature the causal graph cannot produce, an effect on a non-candidate, an alert on a non-lab."""
    copy = ontology_copy(tmp_path)
    candidates = copy / "candidates.ttl"
    text = candidates.read_text()
    text = text.replace('mkg:direction "high" ; mkg:via mkg:HepaticAcutePhaseResponse ;\n'
                        '    mkg:effect [ mkg:candidate mkg:SJIAFlare ; mkg:weight 3 ]',
                        'mkg:direction "low" ; mkg:via mkg:HepaticAcutePhaseResponse ;\n'
                        '    mkg:effect [ mkg:candidate mkg:Ferritin ; mkg:weight 3 ]', 1)
    candidates.write_text(text)
    alerts = copy / "alerts.ttl"
    alerts.write_text(alerts.read_text().replace(
        'mkg:trendPart [ mkg:analyte mkg:PlateletCountTest ;', 'mkg:trendPart [ mkg:analyte mkg:Platelet ;', 1))
    result = run("check", "--ontology", str(copy), "--no-reasoner")
    assert result.returncode == 1
    assert ("sig-flare-platelets-high: no low-signed path in the causal graph from mkg:HepaticAcutePhaseResponse "
            "to mkg:Platelet") in result.stdout
    assert "effect on mkg:Ferritin, which is not a candidate category" in result.stdout
    assert "alert falling-platelets: mkg:Platelet is not a lab test" in result.stdout
