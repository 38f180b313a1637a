"""Regenerate the bad-input corpus files and ``manifest.json`` (run from the repository root).

The manifest is the contract each entry is tested against (tests/test_bad_inputs*.py); ``why`` says which rule of
DESIGN.md section 4 / reference semantics applies, or the choice made where they are silent.  Large and binary
inputs are not files here: ``generate`` names a generator in the test module, run in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
T = "2024-05-01T08:00:00Z"
F = {"code": "ferritin", "value": 12000, "unit": "ng/mL", "time": T}
P = {"code": "platelets", "value": 90, "unit": "10*9/L", "time": T}
entries: list[dict] = []


def put(folder: str, name: str, text: str | None, **entry) -> None:
    if text is not None:
        (HERE / folder).mkdir(exist_ok=True)
        (HERE / folder / name).write_text(text, encoding="utf-8")
    entries.append({"file": f"{folder}/{name}", **entry})


def patient(obs, **extra) -> str:
    data = {"id": "t", "age_years": 7, "sex": "female", "conditions": [{"code": "sJIA", "status": "confirmed"}],
            "observations": obs}
    data.update(extra)
    return json.dumps(data, ensure_ascii=False, indent=1)


# ---- patient JSON: files that cannot be read as a patient (exit 2, one line) ----
J = "json"
for name, text, message in [
    ("empty.json", "", "not valid JSON"),
    ("whitespace.json", " \n\t\n", "not valid JSON"),
    ("truncated.json", patient([F])[:-40], "not valid JSON"),
    ("trailing-comma.json", '{"id": "t", "observations": [],}', "not valid JSON"),
    ("single-quotes.json", "{'id': 't', 'observations': []}", "not valid JSON"),
    ("two-objects.json", patient([F]) + patient([F]), "not valid JSON"),
    ("top-array.json", "[" + patient([F]) + "]", "must be a JSON object"),
    ("top-string.json", '"ferritin 12000"', "must be a JSON object"),
    ("top-null.json", "null", "must be a JSON object"),
    ("no-observations.json", '{"id": "t", "age_years": 7}', "observations must be a list"),
    ("observations-object.json", patient({"0": F}), "observations must be a list"),
    ("observations-string.json", patient("ferritin 12000"), "observations must be a list"),
    ("age-string.json", patient([F], age_years="seven"), "age_years must be a number"),
    ("age-bool.json", patient([F], age_years=True), "age_years must be a number"),
    ("age-negative.json", patient([F], age_years=-1), "age_years -1 is impossible"),
    ("age-absurd.json", patient([F], age_years=1000), "age_years 1000 is impossible"),
    ("age-nan-literal.json", patient([F]).replace('"age_years": 7', '"age_years": NaN'), "NaN is not a number"),
    ("value-infinity-literal.json", patient([dict(F, value=1)]).replace('"value": 1', '"value": Infinity'),
     "Infinity is not a number"),
    ("id-empty.json", patient([F], id=" "), "id must be a non-empty string"),
    ("id-list.json", patient([F], id=["a"]), "id must be a non-empty string"),
    ("sex-unknown.json", patient([F], sex="f<b>"), "sex must be female, male, other or unknown"),
    ("conditions-object.json", patient([F], conditions={"code": "sJIA"}), "conditions must be a list"),
    ("condition-no-code.json", patient([F], conditions=[{"status": "confirmed"}]), "conditions[0]"),
    ("condition-status-number.json", patient([F], conditions=[{"code": "sJIA", "status": 1}]), "conditions[0].status"),
    ("medications-string.json", patient([F], medications="anakinra"), "medications must be a list"),
    ("medication-start-bad.json", patient([F], medications=[{"code": "anakinra", "start": "last week"}]),
     "medications[0].start"),
    ("deeply-nested.json", "[" * 5000 + "]" * 5000, "nested too deeply"),
]:
    put(J, name, text, reader="json", expect=2, message=message)
put(J, "observations-empty.json", patient([]), reader="json", expect=2, message="no usable observation",
    why="nothing to evaluate: DESIGN 4, exit 2 if nothing usable remains")
put(J, "all-rejected.json", patient([{"code": "ferriton", "value": 1, "unit": "ng/mL"}, dict(F, unit="furlong")]),
    reader="json", expect=2, message="no usable observation", warnings=2,
    why="every observation rejected: one warning each, then the one error line")
put(J, "strict-one-rejected.json", patient([F, dict(F, code="ferriton")]), reader="json", expect=2,
    message="1 observation(s) rejected (--strict)", args=["--strict"], warnings=1)
for name, generator, message in [("non-utf8.json", "latin1_json", "not UTF-8"),
                                 ("utf16.json", "utf16_json", "not UTF-8"),
                                 ("nul-bytes.json", "nul_json", "not valid JSON"),
                                 ("very-large.json", "large_json", "not valid JSON"),
                                 ("huge-integer.json", "huge_integer_json", "no usable observation")]:
    put(J, name, None, reader="json", expect=2, message=message, generate=generator,
        warnings=1 if generator == "huge_integer_json" else 0)

# ---- patient JSON: partly valid (exit 0; each bad observation rejected with its reason) ----
bad_observations = [  # (name, observation, fragment of the reason; None = used, see why)
    ("unknown-code", dict(F, code="ferriton"), "unknown code"),
    ("lookalike-cyrillic-code", dict(F, code="ferr\u0456tin"), "unknown code"),
    ("lookalike-fullwidth-code", dict(F, code="\uff46\uff45\uff52\uff52\uff49\uff54\uff49\uff4e"), "unknown code"),
    ("zero-width-code", dict(F, code="ferri\u200btin"), "unknown code"),
    ("html-code", dict(F, code="<script>alert(1)</script>"), "unknown code"),
    ("missing-code", {"value": 1, "unit": "ng/mL"}, "missing code"),
    ("not-an-object", "ferritin 12000", "must be a JSON object"),
    ("unknown-unit", dict(F, unit="furlong"), "unknown unit"),
    ("lookalike-unit", dict(F, unit="ng/\u217cL"), "unknown unit"),
    ("html-unit", dict(F, unit="<b>ng/mL</b>"), "unknown unit"),
    ("missing-unit", {k: v for k, v in F.items() if k != "unit"}, "missing unit"),
    ("wrong-dimension-unit", dict(F, unit="mm/h"), "not a mass-concentration"),
    ("temperature-unit-for-ferritin", dict(F, unit="Cel"), "not a mass-concentration"),
    ("missing-value", {k: v for k, v in F.items() if k != "value"}, "needs a value"),
    ("negative-value", dict(P, value=-5), "negative value"),
    ("text-value", dict(F, value="high"), "not a finite number"),
    ("nan-string-value", dict(F, value="NaN"), "not a finite number"),
    ("infinity-string-value", dict(F, value="Infinity"), "not a finite number"),
    ("bool-value", dict(F, value=True), "not a finite number"),
    ("list-value", dict(F, value=[12000]), "not a finite number"),
    ("overflow-value", dict(F, value="__1e400__"), "not a finite number"),
    ("absurd-ferritin", dict(F, value=10**12), "impossible value"),
    ("absurd-ferritin-molar", dict(F, value=10**11, unit="pmol/L"), "impossible value"),
    ("absurd-hemoglobin", {"code": "hemoglobin", "value": 500, "unit": "g/dL", "time": T}, "impossible value"),
    ("absurd-esr", {"code": "esr", "value": 250, "unit": "mm/h", "time": T}, "impossible value"),
    ("absurd-temperature", {"code": "temperature", "value": 400, "unit": "Cel", "time": T}, "impossible body temperature"),
    ("comparator-less-than-zero", {"code": "esr", "value": 0, "comparator": "<", "unit": "mm/h", "time": T},
     "'<' 0 allows no value"),
    ("comparator-equals", dict(F, comparator="="), "comparator"),
    ("comparator-unicode-geq", dict(F, comparator="\u2265"), "comparator"),
    ("comparator-on-finding", {"code": "fever", "comparator": ">", "time": T}, "meaningless"),
    ("time-unparseable", dict(F, time="yesterday"), "unparseable time"),
    ("time-impossible-date", dict(F, time="2024-02-30T08:00:00Z"), "unparseable time"),
    ("time-number", dict(F, time=1714550400), "ISO 8601"),
    ("time-future", dict(F, time="2999-01-01T00:00:00Z"), "in the future"),
    ("present-string", {"code": "fever", "present": "yes", "time": T}, "present must be true or false"),
    ("unknown-site", {"code": "splenomegaly", "site": "moon", "time": T}, "unknown site"),
    ("condition-as-observation", {"code": "sJIA", "time": T}, "not an observation"),
    ("interpretation-unknown", dict(F, interpretation="very high"), "interpretation"),
    ("reference-range-inverted", dict(F, reference_range={"low": 300, "high": 20, "unit": "ng/mL"}), "above its high"),
    ("reference-range-wrong-unit", dict(F, reference_range={"low": 20, "high": 300, "unit": "mm/h"}), "reference_range"),
]
for name, obs, fragment in bad_observations:
    text = patient([F, obs, P])
    text = text.replace('"__1e400__"', "1e400")
    put(J, f"{name}.json", text, reader="json", expect=0, given=3, used=2, rejected=[["t", 1, fragment]])
put(J, "zero-values.json", patient([F, dict(P, value=0), {"code": "ferritin", "value": 0, "unit": "ng/mL",
                                                          "time": "2024-04-30T08:00:00Z"}]),
    reader="json", expect=0, given=3, used=3, rejected=[],
    why="zero is a possible result (platelets 0 in aplasia, ferritin below detection): used, not rejected")
put(J, "duplicated-observations.json", patient([F, F, P]), reader="json", expect=0, given=3, used=3, rejected=[],
    why="contract silent; an exact repeat (a result sent twice) says nothing new and loses nothing: both used")
put(J, "conflicting-observations.json", patient([F, dict(F, value=50), P]), reader="json", expect=0, given=3,
    used=3, rejected=[], why="contract silent; two results at one time are both real data (two samples): both used, "
                             "the report lists both in observations.items")
put(J, "html-in-id-and-labels.json",
    patient([F, dict(F, code='<img src=x onerror="alert(1)">'), P], id='<img src=x onerror="alert(1)">',
            conditions=[{"code": "sJIA"}, {"code": "<script>alert(2)</script>"}]),
    reader="json", expect=0, given=3, used=2, rejected=[['<img src=x onerror="alert(1)">', 1, "unknown code"]],
    args=["--format", "html"], absent=['<img src=x onerror="alert(1)">', "<script>alert(2)</script>"],
    why="an id is whatever the source system uses: kept, but never live markup in the HTML page")
put(J, "many-bad.json", patient([F] + [o for _, o, _ in bad_observations[:12]] + [P]), reader="json", expect=0,
    given=14, used=2, rejected=[["t", i + 1, frag] for i, (_, _, frag) in enumerate(bad_observations[:12])])

# ---- long CSV ----
C = "csv"
H = "patient_id,time,code,value,unit\n"
GOOD = f"p1,,age_years,7,\np1,,sJIA,confirmed,\np1,{T},ferritin,12000,ng/mL\np1,{T},platelets,90,10*9/L\n"
for name, text, message in [
    ("empty.csv", "", "empty file"),
    ("header-only.csv", H, "no rows after the header"),
    ("unknown-column.csv", "patient_id,time,code,value,unit,colour\n", "unknown column 'colour'"),
    ("missing-column.csv", "patient_id,time,code,value\np1,,ferritin,1\n", "missing column 'unit'"),
    ("column-twice.csv", "patient_id,time,code,value,unit,unit\n", "a column is named twice"),
    ("too-many-fields.csv", H + GOOD + "p1,,ferritin,1,ng/mL,extra\n", "6 fields, the header has 5"),
    ("too-few-fields.csv", H + "p1,,ferritin\n", "3 fields, the header has 5"),
    ("empty-patient-id.csv", H + GOOD + f",{T},ferritin,100,ng/mL\n", "empty patient_id"),
    ("age-not-number.csv", H + "p1,,age_years,seven,\n" + GOOD, "age_years 'seven' is not a number"),
    ("age-conflicting.csv", H + GOOD + "p1,,age_years,9,\n", "a second, different age_years"),
    ("age-negative.csv", "patient_id,time,code,value,unit\np1,,age_years,-3,\n" + GOOD.replace("p1,,age_years,7,\n", ""),
     "age_years -3 is impossible"),
    ("sex-bad.csv", H + "p1,,sex,<script>,\n" + GOOD, "sex must be"),
    ("medication-start-bad.csv", H + GOOD + "p1,someday,anakinra,,\n", "medications[0].start"),
    ("json-in-csv.csv", patient([F]), "unknown column"),
    ("all-rejected.csv", H + "p1,,ferriton,1,ng/mL\np1,,ferritin,1,furlong\n", "no usable observation"),
]:
    put(C, name, text, reader="csv", expect=2, message=message,
        warnings=2 if name == "all-rejected.csv" else 0)
put(C, "one-patient-all-rejected.csv", H + GOOD + "p2,,ferriton,1,ng/mL\n", reader="csv", expect=2,
    message="no usable observation for patient p2", warnings=1,
    why="a patient of a cohort file with nothing usable: exit 2 naming that patient (cli._read_patients)")
for name, generator, message in [("non-utf8.csv", "latin1_csv", "not UTF-8"),
                                 ("nul-byte.csv", "nul_csv", "no usable observation for patient p1"),
                                 ("very-large.csv", "large_csv", "fields, the header has 5")]:
    put(C, name, None, reader="csv", expect=2, message=message, generate=generator,
        warnings=1 if generator == "nul_csv" else 0)  # a NUL in a value: that value is rejected, nothing is left
csv_bad = [  # (name, row after the good rows, fragment)
    ("unknown-code", f"p1,{T},ferriton,100,ng/mL", "unknown code"),
    ("lookalike-code", f"p1,{T},ferr\u0456tin,100,ng/mL", "unknown code"),
    ("html-code", f"p1,{T},<img src=x>,100,ng/mL", "unknown code"),
    ("unknown-unit", f"p1,{T},ferritin,100,furlong", "unknown unit"),
    ("wrong-dimension", f"p1,{T},platelets,100,mg/dL", "not a number-concentration"),
    ("missing-unit", f"p1,{T},ferritin,100,", "missing unit"),
    ("negative", f"p1,{T},fibrinogen,-1,g/L", "negative value"),
    ("text-value", f"p1,{T},ferritin,very high,ng/mL", "not a finite number"),
    ("nan-value", f"p1,{T},ferritin,NaN,ng/mL", "not a finite number"),
    ("inf-value", f"p1,{T},ferritin,inf,ng/mL", "not a finite number"),
    ("overflow-value", f"p1,{T},ferritin,1e400,ng/mL", "not a finite number"),
    ("absurd-ferritin", f"p1,{T},ferritin,1000000000000,ng/mL", "impossible value"),
    ("less-than-zero", f"p1,{T},esr,<0,mm/h", "'<' 0 allows no value"),
    ("decimal-comma", f'p1,{T},ferritin,"12,5",ng/mL', "not a finite number"),
    ("future-time", "p1,2999-01-01,ferritin,100,ng/mL", "in the future"),
    ("unparseable-time", "p1,01/05/2024 8h,ferritin,100,ng/mL", "unparseable time"),
    ("finding-value-word", f"p1,{T},fever,maybe,", "takes no value"),
]
for name, row, fragment in csv_bad:
    put(C, f"{name}.csv", H + GOOD + row + "\n", reader="csv", expect=0, given=3, used=2,
        rejected=[["p1", 2, fragment]])
put(C, "comparator-conflict.csv", "patient_id,time,code,value,unit,comparator\n"
    + GOOD.replace("\n", ",\n") + f"p1,{T},ferritin,>100,ng/mL,<\n", reader="csv", expect=0, given=3, used=2,
    rejected=[["p1", 2, "comparator '< and >'"]], why="a comparator column contradicting the value's own sign")
put(C, "duplicated-rows.csv", H + GOOD + f"p1,{T},ferritin,12000,ng/mL\n", reader="csv", expect=0, given=3,
    used=3, rejected=[], why="as in JSON: a repeated result is used, nothing lost")
put(C, "two-patients-interleaved.csv", H + GOOD + GOOD.replace("p1", "p2") + f"p2,{T},ferriton,1,ng/mL\n"
    + f"p1,{T},ferritin,-1,ng/mL\n", reader="csv", expect=0, given=6, used=4,
    rejected=[["p2", 2, "unknown code"], ["p1", 2, "negative value"]])

# ---- FHIR R4 Bundles ----
X = "fhir"


def bundle(*resources, **extra) -> dict:
    data = {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
                      for i, r in enumerate(resources)]}
    data.update(extra)
    return data


PAT = {"resourceType": "Patient", "id": "f1", "birthDate": "2017-03-15", "gender": "female"}


def obs(i: int, loinc: str = "2276-4", value=12000, unit: str = "ng/mL", **extra) -> dict:
    out = {"resourceType": "Observation", "id": f"o{i}", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
           "subject": {"reference": "Patient/f1"}, "effectiveDateTime": T,
           "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
    out.update(extra)
    return out


def fput(name: str, data, **entry) -> None:
    put(X, name, data if isinstance(data, str) else json.dumps(data, indent=1, ensure_ascii=False), reader="fhir",
        **entry)


fput("no-entries.json", {"resourceType": "Bundle", "type": "collection"}, expect=2, message="a Bundle without entries")
fput("entry-not-list.json", {"resourceType": "Bundle", "type": "collection", "entry": {"resource": PAT}}, expect=2,
     message="Bundle without entries")
fput("entry-not-object.json", {"resourceType": "Bundle", "type": "collection", "entry": ["Patient/f1"]}, expect=2,
     message="invalid Bundle")
fput("birthdate-invalid.json", bundle(dict(PAT, birthDate="2017-02-30"), obs(0)), expect=2, message="birthDate")
fput("birthdate-number.json", bundle(dict(PAT, birthDate=2017), obs(0)), expect=2, message="birthDate")
fput("only-practitioner.json", bundle({"resourceType": "Practitioner", "id": "d1"}), expect=2,
     message="no Patient, Observation, Condition or medication resource")
fput("birthdate-after-observation.json", bundle(dict(PAT, birthDate="2030-01-01"), obs(0)), expect=2,
     message="birthDate after the observation")
fput("observation-after-death.json", bundle(dict(PAT, deceasedDateTime="2020-01-01T00:00:00Z"), obs(0)), expect=2,
     message="after deceasedDateTime")
fput("all-rejected.json", bundle(PAT, obs(0, loinc="9999-9"), obs(1, unit="furlong")), expect=2,
     message="no usable observation", warnings=2)
fput("truncated.json", json.dumps(bundle(PAT, obs(0)))[:-30], expect=2, message="not valid JSON")
fhir_bad = [
    ("unknown-loinc", obs(1, loinc="9999-9"), "unknown code"),
    ("unknown-unit", obs(1, unit="furlong"), "unknown unit"),
    ("wrong-dimension", obs(1, unit="mm/h"), "not a mass-concentration"),
    ("negative", obs(1, value=-3), "negative value"),
    ("absurd-ferritin", obs(1, value=10**12), "impossible value"),
    ("less-than-zero", obs(1, loinc="4537-7", value=0, unit="mm/h",
                           valueQuantity={"value": 0, "comparator": "<", "unit": "mm/h",
                                          "system": "http://unitsofmeasure.org", "code": "mm/h"}),
     "'<' 0 allows no value"),
    ("entered-in-error", obs(1, status="entered-in-error"), "status entered-in-error"),
    ("data-absent", {k: v for k, v in obs(1).items() if k != "valueQuantity"}
     | {"dataAbsentReason": {"text": "sample haemolysed"}}, "dataAbsentReason"),
    ("value-string", {k: v for k, v in obs(1).items() if k != "valueQuantity"} | {"valueString": ">20000"},
     "is not read"),
    ("value-not-number", obs(1, value="lots"), "invalid Observation"),
    ("future-time", obs(1, effectiveDateTime="2999-01-01T00:00:00Z"), "in the future"),
    ("html-code", obs(1, loinc="<script>alert(1)</script>"), "unknown code"),
]
for name, bad, fragment in fhir_bad:
    fput(f"{name}.json", bundle(PAT, obs(0), bad, obs(2, loinc="777-3", value=90, unit="10*9/L")), expect=0,
         given=3, used=2, rejected=[["f1", 1, fragment]])

# ---- SPARQL query files (mas-kg query FILE) ----
S = "sparql"
for name, text, message in [
    ("syntax-error.rq", "SELECT * WHERE { ?s ?p ", "SPARQL syntax error"),
    ("empty.rq", "", "SPARQL syntax error"),
    ("whitespace.rq", "  \n\n", "SPARQL syntax error"),
    ("comment-only.rq", "# nothing to ask\n", "SPARQL syntax error"),
    ("insert.rq", "INSERT DATA { <urn:a> <urn:b> <urn:c> }", "updates are refused"),
    ("delete-where.rq", "DELETE WHERE { ?s ?p ?o }", "updates are refused"),
    ("drop.rq", "DROP ALL", "refused"),
    ("clear.rq", "CLEAR DEFAULT", "refused"),
    ("load.rq", "LOAD <http://example.org/x.ttl>", "LOAD is refused"),
    ("service.rq", "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }", "SERVICE is refused"),
    ("service-lowercase.rq", "select * where { service <http://example.org/sparql> { ?s ?p ?o } }",
     "SERVICE is refused"),
    ("unknown-prefix.rq", "SELECT * WHERE { ?s nope:p ?o }", "SPARQL syntax error"),
    ("html.rq", "<script>alert(1)</script>", "SPARQL syntax error"),
    ("json.rq", patient([F]), "SPARQL syntax error"),
]:
    put(S, name, text, reader="sparql", expect=2, message=message)
put(S, "non-utf8.rq", None, reader="sparql", expect=2, message="not UTF-8", generate="latin1_sparql")
put(S, "missing.rq", None, reader="sparql", expect=2, message="cannot read the query", generate="absent")

# ---- OMOP CDM directories (mas-kg screen DIR): a copy of examples/omop with edits ----
O = "omop"
HEAD = "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,measurement_type_concept_id,operator_concept_id,value_as_number,value_as_concept_id,unit_concept_id,range_low,range_high,measurement_source_value,unit_source_value,value_source_value\n"
for name, edits, message in [
    ("no-person", {"person.csv": None}, "no OMOP person table"),
    ("no-measurement", {"measurement.csv": None}, "measurement"),
    ("person-missing-column", {"person.csv": "person_id,foo\n101,1\n"}, "has no column 'gender_concept_id'"),
    ("measurement-empty", {"measurement.csv": ""}, "empty file"),
    ("measurement-non-utf8", {"measurement.csv": "+@latin1"}, "measurement.csv"),
    ("concept-not-csv", {"concept.csv": "\x00\x01\x02"}, "concept"),
]:
    entries.append({"file": f"{O}/{name}", "reader": "omop", "expect": 2, "message": message, "edits": edits})
entries.append({"file": f"{O}/bad-rows", "reader": "omop", "expect": 0, "edits": {"measurement.csv": "+" + "".join([
    "9001,101,2000000001,2024-05-01,2024-05-01 08:00:00,0,,,,2000000101,,,2276-4,ng/mL,abc\n",
    "9002,101,2000000001,notadate,,0,,100,,2000000101,,,2276-4,ng/mL,100\n",
    "9003,101,2000000001,2024-05-01,2024-05-01 08:00:00,0,,-5,,2000000101,,,2276-4,ng/mL,-5\n",
    "9004,101,1234,2024-05-01,2024-05-01 08:00:00,0,,5,,2000000101,,,x,ng/mL,5\n"])},
    "added_rejected": 4, "reasons": ["unparseable time", "negative value"],
    "why": "a cohort screen rejects row by row: rows = used + rejected, each reason counted"})
entries.append({"file": f"{O}/missing-dir", "reader": "omop", "expect": 2, "message": "missing-dir", "edits": "absent"})

# ---- HTTP requests to mas-kg serve ----
def http(name, method, path, expect, message, body=None, headers=None, **extra):
    entries.append({"file": f"http/{name}", "reader": "http", "method": method, "path": path, "expect": expect,
                    "message": message, "body": body, "headers": headers or {}, **extra})


JS = {"Content-Type": "application/json"}
http("explain-not-json", "POST", "/explain", 400, "not JSON", "{not json", JS)
http("explain-empty-body", "POST", "/explain", 400, "not JSON", "", JS)
http("explain-array", "POST", "/explain", 400, "must be a JSON object", "[]", JS)
http("explain-age-negative", "POST", "/explain", 400, "age_years -1 is impossible", patient([F], age_years=-1), JS)
http("explain-observations-missing", "POST", "/explain", 400, "observations must be a list", '{"id": "t"}', JS)
http("explain-nan", "POST", "/explain", 400, "NaN", patient([F]).replace('"age_years": 7', '"age_years": NaN'), JS)
http("explain-all-rejected", "POST", "/explain", 400, "no usable observation",
     patient([dict(F, code="ferriton")]), JS)
http("explain-wrong-content-type", "POST", "/explain", 415, "application/json", patient([F]), {"Content-Type": "text/plain"})
http("explain-non-utf8", "POST", "/explain", 400, "not UTF-8", None, JS, generate="latin1_json")
http("explain-oversize", "POST", "/explain", 413, "limit", None, JS, generate="oversize")
http("explain-deeply-nested", "POST", "/explain", 400, "nested too deeply", "[" * 5000 + "]" * 5000, JS)
http("explain-get", "GET", "/explain", 405, "not allowed")
http("sparql-syntax", "GET", "/sparql?query=SELECT%20*%20WHERE%20%7B", 400, "syntax")
http("sparql-update-get", "GET", "/sparql?update=DROP%20ALL", 403, "read-only")
http("sparql-insert-post", "POST", "/sparql", 403, "read-only", "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
     {"Content-Type": "application/sparql-update"})
http("sparql-service", "GET", "/sparql?query=SELECT%20*%20WHERE%20%7B%20SERVICE%20%3Chttp%3A%2F%2Fexample.org%2F%3E%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D%20%7D",
     403, "SERVICE")
http("sparql-no-query", "GET", "/sparql", 400, "no query")
http("sparql-twice", "GET", "/sparql?query=ASK%7B%7D&query=ASK%7B%7D", 400, "once")
http("sparql-wrong-content-type", "POST", "/sparql", 415, "POST a query", "SELECT * WHERE {}", {"Content-Type": "text/html"})
http("sparql-non-utf8-form", "POST", "/sparql", 400, "not UTF-8", None,
     {"Content-Type": "application/x-www-form-urlencoded"}, generate="latin1_form")
http("sparql-oversize", "POST", "/sparql", 413, "limit", None, {"Content-Type": "application/sparql-query"},
     generate="oversize")
http("queries-dotdot", "GET", "/queries/../../etc/passwd", 404, "no ")
http("queries-encoded-dotdot", "GET", "/queries/%2e%2e/%2e%2e/etc/passwd", 404, "no ")
http("queries-double-encoded", "GET", "/queries/%252e%252e%252fetc%252fpasswd", 404, "no ")
http("unknown-path", "GET", "/etc/passwd", 404, "no resource")
http("html-in-path", "GET", "/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404, "no resource")
http("bad-content-length", "POST", "/explain", 400, "Content-Length", "{}", dict(JS, **{"Content-Length": "abc"}))

# ---- long CSV through mas-kg screen (the cohort reader: DuckDB, not kg.csvinput) ----
# A cohort screen rejects row by row (even a patient-level row such as a bad age), so partly valid files exit 0 with
# rows = used + rejected; the expected outcome is what explain gives for the same file.
for name, source, message, xfail in [
    ("unknown-column", "csv/unknown-column.csv", "unknown column 'colour'", None),
    ("missing-column", "csv/missing-column.csv", "missing column 'unit'", None),
    ("json-in-csv", "csv/json-in-csv.csv", "unknown column", None),
    ("empty", "csv/empty.csv", "empty file", None),
    ("column-twice", "csv/column-twice.csv", "named twice", None),
    ("too-few-fields", "csv/too-few-fields.csv", "3 fields", None),
    ("too-many-fields", "csv/too-many-fields.csv", "6 fields", None),
    ("header-only", "csv/header-only.csv", "no rows", None),
]:
    entries.append({"file": f"screen/{name}", "reader": "screen", "input": source, "expect": 2, "message": message,
                    **({"xfail": xfail} if xfail else {})})
entries.append({"file": "screen/non-utf8", "reader": "screen", "input": "non-utf8.csv", "generate": "latin1_csv",
                "expect": 2, "message": "UTF-8"})
for name, rejected, reasons, xfail in [
    ("two-patients-interleaved", 2, ["unknown code 'ferriton'", "negative value"], None),
    ("age-negative", 1, ["age_years -3 is impossible"], None),
    ("html-code", 1, ["unknown code"], None),
    ("less-than-zero", 1, ["'<' 0"], None),
    ("future-time", 1, ["future"], None),
    ("absurd-ferritin", 1, ["1000000000000"], None),  # 13 digits: beyond the screen's exact reading, rejected
    ("lookalike-code", 1, ["unknown code"], None),
]:
    entries.append({"file": f"screen/{name}", "reader": "screen", "input": f"csv/{name}.csv", "expect": 0,
                    "added_rejected": rejected, "reasons": reasons, **({"xfail": xfail} if xfail else {})})

(HERE / "manifest.json").write_text(json.dumps({"entries": entries}, indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
print(len(entries), "entries")
