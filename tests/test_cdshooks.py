"""The CDS Hooks service of ``mas-kg serve`` over real HTTP: discovery, patient-view cards, views, feedback, JWTs.

Two servers serve the module: one verifying JWTs (a test EC P-384 key and an RSA key, generated here),
one without ``--cds-jwks``.  The prefetch of each call is built from ``tests/fhir_bundles.patient_bundle``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import EXAMPLES, HOSTILE, run_cli
from fhir_bundles import patient_bundle
from test_server import error_of, start_server, stop_server

from kg.cds_auth import ReplayCacheFull, TokenError, TokenVerifier, load_jwks_data
from kg.cds_cards import SUMMARY_LIMIT, md
from kg.cdshooks import ViewStore

pytestmark = pytest.mark.slow

SERVICE = "mas-kg-patient-view"
ISS = "https://ehr.example.org"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_KEY = ec.generate_private_key(ec.SECP384R1())  # not in the key set
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
# expected indicator of each example patient's card (kg/cds_cards.py states the rules)
EXPECTED = {"sjia-mas": "critical", "boundary-mas2016": "critical", "infant-hb": "critical",
            "infant-prf1": "critical", "adult-ebv-hlh": "critical", "sjia-flare": "warning",
            "sepsis-dic": "warning", "missing-data": "warning"}
PUBLIC = "https://cds.example.org/mas"  # the open server's --cds-base-url, as if behind a proxy
ISSUED: set[str] = set()  # every card uuid seen in the module: each must be new


def jwks() -> dict:
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    return {"keys": [{**ec_jwk, "kid": "test-ec", "use": "sig", "alg": "ES384"}, {**rsa_jwk, "kid": "test-rsa"}]}


def token(aud: str | list[str], *, key=EC_KEY, alg: str = "ES384", kid: str | None = "test-ec", iss: str = ISS,
          lifetime: int = 240, issued: float | None = None, drop: tuple[str, ...] = (), **claims) -> str:
    now = int(time.time() if issued is None else issued)
    payload = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    payload.update(claims)
    for name in drop:
        payload.pop(name)
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(aud: str, alg: str) -> str:
    """A token PyJWT refuses to make: unsigned (alg none) or HMAC-signed with the public key's PEM as secret."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "test-ec"}).encode())
    now = int(time.time())
    payload = b64(json.dumps({"iss": ISS, "aud": aud, "iat": now, "exp": now + 120,
                              "jti": str(uuid.uuid4())}).encode())
    signing = f"{header}.{payload}".encode()
    signature = "" if alg == "none" else b64(hmac.new(PUBLIC_PEM, signing, hashlib.sha384).digest())
    return f"{header}.{payload}.{signature}"


def prefetch_of(patient: dict) -> dict:
    """The four prefetch values: the Patient, and searchset Bundles of the other resources by kind."""
    searchset = {key: {"resourceType": "Bundle", "type": "searchset", "entry": []}
                 for key in ("observations", "conditions", "medications")}
    out: dict = {"patient": None, **searchset}
    keys = {"Observation": "observations", "Condition": "conditions", "MedicationStatement": "medications",
            "MedicationRequest": "medications"}
    for entry in patient_bundle(patient)["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            out["patient"] = resource
        else:
            out[keys[resource["resourceType"]]]["entry"].append({"fullUrl": entry["fullUrl"], "resource": resource})
    return out


def hook_call(patient_id: str, prefetch: dict, **extra) -> dict:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "fhirServer": "https://ehr.example.org/fhir",
            "context": {"userId": "Practitioner/1", "patientId": patient_id}, "prefetch": prefetch, **extra}


SANDBOX = "https://sandbox.example.org"  # a browser-based CDS client allowed by CORS


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def stop(process, stderr) -> None:
    """``test_server.stop_server``, tried again when a thread of the server ends while its ``children()`` reads
    /proc (FileNotFoundError, before it stops anything)."""
    for _ in range(10):
        try:
            return stop_server(process, stderr)
        except FileNotFoundError:
            time.sleep(0.1)
    stop_server(process, stderr)


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cds") / "jwks.json"
    path.write_text(json.dumps(jwks()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def secured(keyfile):
    log = keyfile.parent / "feedback.jsonl"
    process, url, stderr = start_server(["serve", "--port", "0", "--workers", "1", "--cds-jwks", str(keyfile),
                                         "--cds-issuer", ISS, "--cds-feedback-log", str(log),
                                         "--cds-cors-origin", SANDBOX])
    base = url[: -len("/sparql")]
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        yield {"base": base, "http": client, "log": log, "stderr": stderr}
    stop(process, stderr)


@pytest.fixture(scope="module")
def open_server():
    process, url, stderr = start_server(["serve", "--port", "0", "--workers", "1", "--cds-view-ttl", "3",
                                         "--cds-base-url", PUBLIC + "/"])
    base = url[: -len("/sparql")]
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        yield {"base": base, "http": client, "stderr": stderr}
    stop(process, stderr)


def call(server: dict, body, *, path: str = f"/cds-services/{SERVICE}", bearer: str | None = "auto",
         method: str = "POST") -> httpx.Response:
    """A request with a fresh valid token for its URL unless ``bearer`` says otherwise (None: no header)."""
    headers = {}
    if bearer == "auto":
        bearer = token(server["base"] + path)
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if method == "GET":
        return server["http"].get(path, headers=headers)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server["http"].post(path, content=content, headers={**headers, "Content-Type": "application/json"})


def check_card(card: dict) -> None:
    """The spec's card fields and types."""
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) < 140 and "\n" not in card["summary"]
    assert card["indicator"] in ("info", "warning", "critical")
    assert isinstance(card["source"]["label"], str) and card["source"]["label"]
    assert isinstance(card["detail"], str) and card["detail"].strip()
    assert card["uuid"] not in ISSUED
    ISSUED.add(card["uuid"])
    uuid.UUID(card["uuid"])
    for link in card.get("links", []):
        assert link["type"] == "absolute" and link["label"] and link["url"].startswith("http")
    assert not {"suggestions", "selectionBehavior"} & set(card)
    for reason in card.get("overrideReasons", []):  # the spec: a Coding with a display
        assert reason["code"] and reason["system"] and reason["display"]
    assert ("overrideReasons" in card) == (card["indicator"] != "info")
    for key, value in card.items():  # the spec: no null or empty values
        assert value not in (None, "", [], {}), key


# -- discovery and the index

def test_discovery(secured):
    response = call(secured, None, path="/cds-services", method="GET")
    assert response.status_code == 200, response.text
    [service] = response.json()["services"]
    assert service["id"] == SERVICE and service["hook"] == "patient-view"
    assert service["title"] and service["description"]
    assert set(service["prefetch"]) == {"patient", "observations", "conditions", "medications"}
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert all("{{context.patientId}}" in template for template in service["prefetch"].values())
    index = secured["http"].get("/").json()
    assert any(key.endswith("/cds-services") for key in index["endpoints"]) and index["cds_hooks"]["jwt_required"]


def test_discovery_needs_a_token(secured):
    response = call(secured, None, path="/cds-services", method="GET", bearer=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="mas-kg"'
    assert "bearer token" in error_of(response)


# -- the service

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_example_gets_a_valid_card(secured, name):
    patient = example(name)
    response = call(secured, hook_call(patient["id"], prefetch_of(patient)))
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    check_card(card)
    assert card["indicator"] == EXPECTED[name]
    assert card["source"]["label"].startswith("mas-kg ")
    for heading in ("#### Criteria and scores", "#### Candidates", "#### Why each abnormal finding is abnormal"):
        assert heading in card["detail"]
    [link] = card["links"]
    assert link["url"].startswith(f"{secured['base']}/cds-services/{SERVICE}/views/")
    page = httpx.get(link["url"], timeout=60, trust_env=False)  # a browser: no token
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<!DOCTYPE html>" in page.text[:200] and patient["id"] in page.text


def test_sjia_mas_card(secured):
    patient = example("sjia-mas")
    [card] = call(secured, hook_call(patient["id"], prefetch_of(patient))).json()["cards"]
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("MAS likely: HLH-2004, 2016 EULAR/ACR/PRINTO")  # the ontology's order
    assert "ferritin 14,500 ng/mL" in card["summary"]
    assert card["source"]["url"] == "https://doi.org/10.1002/pbc.21039"  # HLH-2004, the first set met
    detail = card["detail"]
    assert "| 2016 EULAR\\/ACR\\/PRINTO classification criteria" in detail and "| **met** |" in detail
    assert "ESR\\/CRP discordance" in detail and "why esr is not high" in detail  # the alert with its chain
    assert "1. **macrophage activation syndrome**" in detail
    assert "- **ferritin high** (14\\,500 ng\\/mL)" in detail
    assert "→ (\\+) interleukin\\-1 beta: seed\\:" in detail  # a step with its source
    assert "#### What to test next" in detail and "hlh\\-molecular\\-diagnosis" in detail
    assert "medications were not prefetched" not in detail


def normal_patient() -> dict:
    when = "2024-05-01T08:00:00Z"
    labs = [("ferritin", 80, "ng/mL"), ("platelets", 250, "10*9/L"), ("hemoglobin", 13.5, "g/dL"),
            ("leukocytes", 7, "10*9/L"), ("neutrophils", 4, "10*9/L"), ("crp", 2, "mg/L"), ("esr", 10, "mm/h"),
            ("fibrinogen", 3, "g/L"), ("ast", 25, "U/L"), ("triglycerides", 1.2, "mmol/L"),
            ("temperature", 36.8, "Cel")]
    return {"id": "normal-1", "age_years": 35, "sex": "female",
            "observations": [{"code": c, "value": v, "unit": u, "time": when} for c, v, u in labs]}


def test_a_normal_patient_gets_no_card(secured):
    patient = normal_patient()
    response = call(secured, hook_call(patient["id"], prefetch_of(patient)))
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


def test_one_abnormal_lab_gets_an_info_card(secured):
    patient = normal_patient()
    patient["observations"] = [o for o in patient["observations"] if o["code"] != "esr"]  # no ESR/CRP discordance
    patient["observations"][5]["value"] = 40  # CRP high, nothing else
    [card] = call(secured, hook_call(patient["id"], prefetch_of(patient))).json()["cards"]
    check_card(card)
    assert card["indicator"] == "info"
    assert card["summary"] == "No MAS/HLH criteria met: 1 abnormal finding explained"


def test_medications_are_optional(secured):
    patient = example("sjia-mas")
    prefetch = prefetch_of(patient)
    del prefetch["medications"]
    [card] = call(secured, hook_call(patient["id"], prefetch)).json()["cards"]
    assert card["indicator"] == "critical" and "medications were not prefetched" in card["detail"]


@pytest.mark.parametrize("key", ["patient", "observations", "conditions"])
def test_missing_prefetch_is_412(secured, key):
    patient = example("sjia-mas")
    prefetch = prefetch_of(patient)
    del prefetch[key]
    response = call(secured, hook_call(patient["id"], prefetch))
    assert response.status_code == 412
    message = error_of(response)
    assert f"prefetch {key} missing" in message and "does not query fhirServer" in message


@pytest.mark.parametrize("change,words", [
    (lambda p: p.update(patient=None), "patient is null"),
    (lambda p: p.update(observations={"resourceType": "OperationOutcome", "issue": []}), "OperationOutcome"),
    (lambda p: p["observations"].update(link=[{"relation": "next", "url": "https://x/page2"}]), "next page"),
    (lambda p: None, "no Patient 'someone-else'"),
])
def test_unusable_prefetch_is_412(secured, change, words):
    patient = example("sjia-flare")
    prefetch = prefetch_of(patient)
    change(prefetch)
    response = call(secured, hook_call("someone-else" if "someone" in words else patient["id"], prefetch))
    assert response.status_code == 412
    assert words in error_of(response)


@pytest.mark.parametrize("body,words", [
    (b"{not json", "not JSON"),
    (b"[]", "JSON object"),
    ({"hook": "patient-view", "context": {"patientId": "p"}}, "hookInstance"),
    ({"hook": "patient-view", "hookInstance": "h", "context": {}}, "context.patientId"),
    ({"hook": "patient-view", "hookInstance": "h", "context": {"patientId": "p"}, "fhirAuthorization": {}},
     "fhirServer"),
    ({"hook": "patient-view", "hookInstance": "h", "context": {"patientId": "p"}, "prefetch": []}, "prefetch"),
    ({"hook": "patient-view", "hookInstance": "h", "context": {"patientId": "p"},
      "prefetch": {"patient": {"resourceType": "Patient", "id": "p"}, "observations": "x", "conditions": None}},
     "not a FHIR resource"),
])
def test_malformed_request_is_400(secured, body, words):
    response = call(secured, body)
    assert response.status_code == 400
    assert words in error_of(response)


def test_wrong_hook_is_400(secured):
    patient = example("sjia-mas")
    response = call(secured, {**hook_call(patient["id"], prefetch_of(patient)), "hook": "order-sign"})
    assert response.status_code == 400
    assert "'order-sign' is not served here" in error_of(response)


def test_unknown_service_view_and_method(secured):
    response = call(secured, hook_call("p", {}), path="/cds-services/no-such-service")
    assert response.status_code == 404 and "no-such-service" in error_of(response)
    response = call(secured, {"feedback": []}, path="/cds-services/no-such-service/feedback")
    assert response.status_code == 404
    assert httpx.get(f"{secured['base']}/cds-services/{SERVICE}/views/{uuid.uuid4()}",
                     trust_env=False).status_code == 404
    assert httpx.get(f"{secured['base']}/cds-services/other/views/{uuid.uuid4()}", trust_env=False).status_code == 404
    response = call(secured, None, path=f"/cds-services/{SERVICE}", method="GET")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_hostile_strings_stay_inert(secured):
    """A patient id, observation codes, a unit and the hookInstance that try to inject Markdown or HTML."""
    link, script = "[x](javascript:alert(1))", "</script><img src=x onerror=alert(1)>"

    def observation(index: int, code: str, value: float, unit: str, system: str = "http://loinc.org") -> dict:
        return {"resource": {"resourceType": "Observation", "id": f"o{index}", "status": "final",
                             "code": {"coding": [{"system": system, "code": code}]},
                             "subject": {"reference": "Patient/unknown"}, "effectiveDateTime": "2024-05-01T08:00:00Z",
                             "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit}}}

    prefetch = {"patient": {"resourceType": "Patient", "identifier": [{"value": link}], "gender": "female",
                            "birthDate": "2017-01-01"},
                "observations": {"resourceType": "Bundle", "type": "searchset", "entry": [
                    observation(0, "2276-4", 12000, "ng/mL"), observation(1, script, 1, "g/L"),
                    observation(2, "2276-4", 5, link), observation(3, "x", 1, "g/L", HOSTILE[1]),
                    observation(4, "see www.evil.example or mail a@evil.example", 1, "g/L")]},
                "conditions": None}
    response = call(secured, {**hook_call(link, prefetch), "hookInstance": script})
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    check_card(card)
    detail = card["detail"]
    assert "#### Observations not used (4)" in detail
    assert "prefetch\\.observations\\.entry\\[1\\] Observation\\/o1" in detail  # each with its FHIR location
    for raw in ("<", ">", "](", "javascript:", "www.evil", "a@evil", '"'):
        assert raw not in detail, raw
    import cmarkgfm  # GitHub's renderer (a test dependency): no link, image or tag may form
    html = cmarkgfm.github_flavored_markdown_to_html(detail, options=cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE)
    assert "<a " not in html and "<img" not in html and "<script" not in html and "<iframe" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text


# -- feedback

def test_feedback(secured):
    patient = example("sjia-flare")
    [card] = call(secured, hook_call(patient["id"], prefetch_of(patient))).json()["cards"]
    path = f"/cds-services/{SERVICE}/feedback"
    accepted = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": "s1"}],
                "outcomeTimestamp": "2024-05-11T06:05:00Z"}
    overridden = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2024-05-11T06:06:00Z",
                  "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "seen"}}
    response = call(secured, {"feedback": [accepted, overridden]}, path=path)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2}
    rows = [json.loads(line) for line in secured["log"].read_text(encoding="utf-8").splitlines()]
    mine = [r for r in rows if r["card"] == card["uuid"]]
    assert [r["outcome"] for r in mine] == ["accepted", "overridden"] and all(r["known_card"] for r in mine)
    assert mine[1]["overrideReason"]["code"] == "already-assessed" and mine[1]["userComment"] == "seen"
    assert call(secured, {"feedback": [accepted]}, path=path, bearer=None).status_code == 401


@pytest.mark.parametrize("body", [
    {}, {"feedback": []}, {"feedback": ["x"]},
    {"feedback": [{"card": "c", "outcome": "maybe", "outcomeTimestamp": "2024-05-11T06:05:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2024-05-11T06:05:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]},
    {"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2024-05-11T06:05:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2024-05-11T06:05:00Z",
                   "overrideReason": "no"}]},
])
def test_malformed_feedback_is_400(secured, body):
    response = call(secured, body, path=f"/cds-services/{SERVICE}/feedback")
    assert response.status_code == 400
    error_of(response)


# -- JWT verification

def test_rs384_from_a_trusted_rsa_key(secured):
    aud = secured["base"] + "/cds-services"
    good = token(aud, key=RSA_KEY, alg="RS384", kid="test-rsa")
    assert call(secured, None, path="/cds-services", method="GET", bearer=good).status_code == 200
    as_array = token(["https://elsewhere.example.org/cds-services", aud])  # aud may be an array holding this URL
    assert call(secured, None, path="/cds-services", method="GET", bearer=as_array).status_code == 200


def bad_tokens(aud: str) -> dict[str, tuple[str, str]]:
    now = time.time()
    return {
        "other key": (token(aud, key=OTHER_KEY), "signature does not verify"),
        "expired": (token(aud, issued=now - 200, lifetime=100), "expired"),
        "issued in the future": (token(aud, issued=now + 600), "future"),
        "too long a life": (token(aud, lifetime=600), "at most 300 s"),
        "wrong aud": (token(aud + "/other"), "aud does not name this endpoint"),
        "wrong iss": (token(aud, iss="https://evil.example.org"), "not an accepted issuer"),
        "no jti": (token(aud, drop=("jti",)), "no jti claim"),
        "no exp": (token(aud, drop=("exp",)), "no exp claim"),
        "no iat": (token(aud, drop=("iat",)), "no iat claim"),
        "no kid": (token(aud, kid=None), "no kid"),
        "unknown kid": (token(aud, kid="nobody"), "names no trusted key"),
        "alg none": (forged(aud, "none"), "alg 'none' is not accepted"),
        "HS384 with the public key": (forged(aud, "HS384"), "alg 'HS384' is not accepted"),
        "ES256 not allowed": (token(aud, key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"), "ES256"),
        "EC key for RS384": (token(aud, key=RSA_KEY, alg="RS384", kid="test-ec"), "not for alg RS384"),
        "not a JWT": ("abc.def", "not a JWS"),
    }


@pytest.mark.parametrize("case", list(bad_tokens("x")))
def test_bad_tokens_are_401(secured, case):
    path = f"/cds-services/{SERVICE}"
    bearer, words = bad_tokens(secured["base"] + path)[case]
    patient = example("boundary-mas2016")
    response = call(secured, hook_call(patient["id"], prefetch_of(patient)), bearer=bearer)
    assert response.status_code == 401, case
    assert words in error_of(response), (case, response.text)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="mas-kg", error="invalid_token", error_description="')


def test_replayed_jti_is_401(secured):
    bearer = token(secured["base"] + "/cds-services")
    assert call(secured, None, path="/cds-services", method="GET", bearer=bearer).status_code == 200
    response = call(secured, None, path="/cds-services", method="GET", bearer=bearer)
    assert response.status_code == 401 and "replay" in error_of(response)


def test_a_token_is_for_one_endpoint(secured):
    """A discovery token does not open the service: aud is the URL of the endpoint called."""
    patient = example("boundary-mas2016")
    bearer = token(secured["base"] + "/cds-services")
    response = call(secured, hook_call(patient["id"], prefetch_of(patient)), bearer=bearer)
    assert response.status_code == 401 and "aud" in error_of(response)


# -- without --cds-jwks

def test_open_server_warns_and_serves_unsigned_calls(open_server):
    open_server["stderr"].seek(0)
    assert "warning: CDS Hooks JWT verification is off" in open_server["stderr"].read()
    assert call(open_server, None, path="/cds-services", method="GET", bearer=None).status_code == 200
    patient = example("sjia-mas")
    response = call(open_server, hook_call(patient["id"], prefetch_of(patient)), bearer=None)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    check_card(card)
    created = time.monotonic()
    public = card["links"][0]["url"]
    assert public.startswith(f"{PUBLIC}/cds-services/{SERVICE}/views/")  # links start with --cds-base-url
    url = open_server["base"] + public[len(PUBLIC):]
    assert httpx.get(url, trust_env=False, timeout=60).status_code == 200
    time.sleep(max(0.0, created + 3.5 - time.monotonic()))  # --cds-view-ttl 3
    expired = httpx.get(url, trust_env=False, timeout=60)
    assert expired.status_code == 404 and "expired" in error_of(expired)


# -- start-up refusals (exit 2, one line)

@pytest.mark.parametrize("content,words", [
    ("{not json", "not JSON"),
    ('{"keys": {}}', "not a JSON Web Key Set"),
    ('{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}', "not an asymmetric key type"),
    (json.dumps({"keys": [{k: v for k, v in jwks()["keys"][0].items() if k != "kid"}]}), "no kid"),
    (json.dumps({"keys": [jwks()["keys"][0], jwks()["keys"][0]]}), "appears twice"),
    (json.dumps({"keys": [json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY)) | {"kid": "p"}]}), "private key"),
])
def test_bad_key_set_exits_2(tmp_path, content, words):
    path = tmp_path / "jwks.json"
    path.write_text(content, encoding="utf-8")
    result = run_cli("serve", "--port", "0", "--cds-jwks", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and words in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args,words", [
    (["--cds-issuer", ISS], "--cds-issuer needs --cds-jwks"),
    (["--cds-jwks", "KEYS", "--cds-algorithms", "HS256"], "HS256 not allowed"),
    (["--cds-jwks", "KEYS", "--cds-algorithms", "none"], "none not allowed"),
    (["--cds-base-url", "ftp://x"], "expected http(s)://"),
    (["--cds-view-ttl", "0"], "--cds-view-ttl"),
])
def test_bad_cds_options_exit_2(keyfile, args, words):
    result = run_cli("serve", "--port", "0", *[str(keyfile) if a == "KEYS" else a for a in args])
    assert result.returncode == 2 and result.stdout == "" and words in result.stderr, result.stderr


# -- in-process units: the view store, the replay memory, the summary limit

def test_view_store_expires_and_evicts():
    now = [0.0]
    views = ViewStore(ttl=10, max_entries=2, clock=lambda: now[0])
    first, second = views.put({"n": 1}), views.put({"n": 2})
    assert views.get(first) == {"n": 1}
    third = views.put({"n": 3})  # evicts the least recently used: second
    assert views.get(second) is None and views.get(first) == {"n": 1} and views.get(third) == {"n": 3}
    now[0] = 10.0
    assert views.get(first) is None and views.get("../../etc/passwd") is None


def test_replay_memory_is_bounded():
    now = [time.time()]  # the verifier's clock for forgetting; PyJWT checks exp against real time
    verifier = TokenVerifier(load_jwks_data(jwks(), where="test"), max_replay=2, clock=lambda: now[0])
    aud = "https://cds.example.org/cds-services"
    tokens = [token(aud) for _ in range(4)]
    verifier.verify("Bearer " + tokens[0], audience=aud)
    verifier.verify("Bearer " + tokens[1], audience=aud)
    with pytest.raises(ReplayCacheFull):  # two unexpired tokens held: a third is refused, none forgotten early
        verifier.verify("Bearer " + tokens[2], audience=aud)
    with pytest.raises(TokenError, match="replay"):
        verifier.verify("Bearer " + tokens[0], audience=aud)
    now[0] += 240 + 61  # past both tokens' exp and the leeway: forgotten, so there is room again
    assert verifier.verify("Bearer " + tokens[3], audience=aud)["jti"]


def test_markdown_escape_leaves_nothing_live():
    for text in [*HOSTILE, "[x](javascript:alert(1))", "![i](http://x/i.png)", "<http://x>", "http://x.example",
                 "www.x.example", "a@b.example", "*bold* _it_ `code` # h | t | ~~s~~", "line\nbreak\u2028"]:
        escaped = md(text)
        assert "\n" not in escaped and "<" not in escaped and "](" not in escaped
    assert SUMMARY_LIMIT < 140


def test_card_urgency_and_names_come_from_the_ontology(engine):
    from kg.cds_cards import indicator_of

    assert all(c.short_label and c.alert_tier in {"critical", "warning", "none"} for c in engine.kb.criteria)
    assert all(c.short_label for c in engine.kb.candidates)
    report = engine.explain(EXAMPLES / "sjia-mas.json").to_dict()
    assert indicator_of(report) == "critical"
    for criterion in report["criteria"]:
        criterion["alert_tier"] = "none"  # as if the ontology surfaced no set
    assert indicator_of(report) != "critical"


def test_cors_for_an_allowed_browser_based_client(secured, open_server):
    path = f"/cds-services/{SERVICE}"
    preflight = secured["http"].options(path, headers={"Origin": SANDBOX, "Access-Control-Request-Method": "POST",
                                                       "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204  # no token: a browser sends none on a preflight
    assert preflight.headers["access-control-allow-origin"] == SANDBOX
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    patient = example("sjia-mas")
    body = json.dumps(hook_call(patient["id"], prefetch_of(patient))).encode()
    headers = {"Authorization": f"Bearer {token(secured['base'] + path)}", "Content-Type": "application/json"}
    answer = secured["http"].post(path, content=body, headers={**headers, "Origin": SANDBOX})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == SANDBOX
    other = secured["http"].options(path, headers={"Origin": "https://evil.example.org"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    sparql = secured["http"].get("/sparql", params={"query": "ASK {}"}, headers={"Origin": SANDBOX})
    assert "access-control-allow-origin" not in sparql.headers  # the SPARQL endpoint stays same-origin
    closed = open_server["http"].options(path, headers={"Origin": SANDBOX})
    assert closed.status_code == 403  # no --cds-cors-origin: no cross-origin calls


def test_bad_cors_origin_exits_2():
    result = run_cli("serve", "--port", "0", "--cds-cors-origin", "https://x.example.org/path")
    assert result.returncode == 2 and "--cds-cors-origin" in result.stderr and "Traceback" not in result.stderr
