"""``mas-kg serve`` over real HTTP: the SPARQL 1.1 Protocol, refusals and limits, /explain and the named queries.

One server (a subprocess, as a user starts it) serves the whole module.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
import rdflib

from conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow

MKR = "https://w3id.org/mas-kg/report/"
VERDICT = 'SELECT ?s WHERE { ?v mkr:code "mas2016" ; mkr:status ?s ; mkr:patient/mkr:patientId "ex-sjia-mas" }'
DECLARED = f"PREFIX mkr: <{MKR}>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n{VERDICT}"
CROSS = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
SERVER_ARGS = ["serve", "--port", "0", "--timeout", "3", "--max-rows", "2000",
               "--patient", "examples/patients/sjia-mas.json", "--patient", "examples/patients/sjia-flare.json"]


def start_server(args: list[str]) -> tuple[subprocess.Popen, str, io.TextIOBase]:
    """Start ``mas-kg`` as a subprocess; return it, the URL it printed and its stderr file."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "kg.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=stderr, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=120)
    except queue.Empty:
        line = ""
    if not line.startswith("mas-kg: serving http://"):
        process.kill()
        process.wait(30)
        stderr.seek(0)
        pytest.fail(f"the server did not start: {line!r}; stderr: {stderr.read()[-2000:]}")
    return process, line.split()[2], stderr


def children(pid: int) -> set[int]:
    """The child processes of a process (Linux /proc; empty elsewhere)."""
    found: set[int] = set()
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as handle:
                found.update(int(word) for word in handle.read().split())
        except FileNotFoundError:  # a request thread that ended since the listing
            continue
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop_server(process: subprocess.Popen, stderr: io.TextIOBase) -> None:
    workers = children(process.pid)
    process.terminate()
    try:
        status = process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the server did not stop on SIGTERM")
    stderr.seek(0)
    log = stderr.read()
    stderr.close()
    assert status == 0, log[-2000:]
    assert "mas-kg: stopped" in log
    assert "Traceback" not in log, log[-2000:]
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "query workers outlived the server"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server():
    process, url, stderr = start_server(SERVER_ARGS)
    yield {"url": url, "base": url[: -len("/sparql")], "pid": process.pid}
    stop_server(process, stderr)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server["base"], timeout=60, trust_env=False) as client:
        yield client


def error_of(response: httpx.Response) -> str:
    """The one-line JSON error every failure carries."""
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert isinstance(message, str) and message and "\n" not in message and "Traceback" not in message
    return message


def verdict_from(response: httpx.Response, fmt: str) -> str:
    assert response.status_code == 200, response.text
    text = response.text
    if fmt == "json":
        return response.json()["results"]["bindings"][0]["s"]["value"]
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["s"]
        return rows[1][0]
    if fmt == "tsv":
        header, value = text.splitlines()[:2]
        assert header == "?s"
        return value.strip('"')
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    return ET.fromstring(text).find("r:results/r:result/r:binding/r:literal", ns).text


ACCEPT = {"json": "application/sparql-results+json", "csv": "text/csv", "tsv": "text/tab-separated-values",
          "xml": "application/sparql-results+xml"}


def test_binds_localhost_by_default(server):
    assert urlsplit(server["url"]).hostname == "127.0.0.1"
    assert server["url"].endswith("/sparql")


def test_index_and_health(http):
    assert "/sparql" in " ".join(http.get("/").json()["endpoints"])
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["quads"] > 1000
    assert health["patients"] == ["ex-sjia-flare", "ex-sjia-mas"]
    assert "access-control-allow-origin" not in http.get("/health").headers


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("fmt", ["JSON", "XML"])
@pytest.mark.parametrize("query", [VERDICT, DECLARED], ids=["predeclared", "declared"])
def test_sparqlwrapper(server, monkeypatch, method, fmt, query):
    from SPARQLWrapper import SPARQLWrapper

    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = SPARQLWrapper(server["url"])
    client.setQuery(query)
    client.setReturnFormat(fmt.lower())
    client.setMethod(method)
    result = client.query().convert()
    if fmt == "JSON":
        assert [b["s"]["value"] for b in result["results"]["bindings"]] == ["met"]
    else:
        literals = result.getElementsByTagName("literal")
        assert [node.firstChild.data for node in literals] == ["met"]


@pytest.mark.parametrize("fmt", ["json", "csv", "tsv", "xml"])
@pytest.mark.parametrize("how", ["get", "form", "sparql-query"])
def test_select_in_every_format(http, fmt, how):
    headers = {"Accept": ACCEPT[fmt]}
    if how == "get":
        response = http.get("/sparql", params={"query": VERDICT}, headers=headers)
    elif how == "form":
        response = http.post("/sparql", data={"query": VERDICT}, headers=headers)
    else:
        response = http.post("/sparql", content=VERDICT.encode(),
                             headers={**headers, "Content-Type": "application/sparql-query"})
    assert response.headers["content-type"].startswith(ACCEPT[fmt])
    assert verdict_from(response, fmt) == "met"


def test_json_is_the_default(http):
    response = http.get("/sparql", params={"query": VERDICT})
    assert response.headers["content-type"].startswith("application/sparql-results+json")
    assert verdict_from(response, "json") == "met"


def test_ask(http):
    response = http.get("/sparql", params={"query": 'ASK { ?v mkr:code "mas2016" ; mkr:status "met" }'})
    assert response.status_code == 200 and response.json()["boolean"] is True
    response = http.post("/sparql", data={"query": 'ASK { ?v mkr:code "no-such-criterion" }'},
                         headers={"Accept": "text/csv"})
    assert response.text.split() == ["boolean", "false"]


@pytest.mark.parametrize("accept,fmt", [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                        (None, "turtle")])
def test_construct_gives_rdf(http, accept, fmt):
    query = ('CONSTRUCT { ?v mkr:status ?s } WHERE { ?v mkr:code "mas2016" ; mkr:status ?s ; '
             'mkr:patient/mkr:patientId "ex-sjia-mas" }')
    response = http.get("/sparql", params={"query": query}, headers={"Accept": accept} if accept else {})
    assert response.status_code == 200, response.text
    graph = rdflib.Graph().parse(data=response.text, format=fmt)
    assert list(graph.objects(None, rdflib.URIRef(MKR + "status"))) == [rdflib.Literal("met")]


def test_not_acceptable(http):
    response = http.get("/sparql", params={"query": VERDICT}, headers={"Accept": "image/png"})
    assert response.status_code == 406
    error_of(response)
    response = http.get("/sparql", params={"query": VERDICT}, headers={"Accept": "text/turtle"})
    assert response.status_code == 406  # a result set has no Turtle form


@pytest.mark.parametrize("query", [
    "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
    "DELETE WHERE { ?s ?p ?o }",
    "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
    "LOAD <http://example.org/data.ttl>",
    "CLEAR ALL",
])
@pytest.mark.parametrize("how", ["get", "form"])
def test_updates_and_service_are_refused(http, query, how):
    if how == "get":
        response = http.get("/sparql", params={"query": query})
    else:
        response = http.post("/sparql", data={"query": query})
    assert response.status_code == 403, response.text
    error_of(response)


def test_update_requests_are_refused(http):
    update = "INSERT DATA { <urn:a> <urn:b> <urn:c> }"
    assert http.post("/sparql", data={"update": update}).status_code == 403
    response = http.post("/sparql", content=update.encode(), headers={"Content-Type": "application/sparql-update"})
    assert response.status_code == 403
    error_of(response)
    assert http.get("/sparql", params={"update": update}).status_code == 403
    assert verdict_from(http.get("/sparql", params={"query": VERDICT}), "json") == "met"  # nothing changed


def test_over_long_query(http):
    query = VERDICT + " #" + "x" * 20_001
    response = http.post("/sparql", data={"query": query})
    assert response.status_code == 413
    assert "20000" in error_of(response)
    response = http.get("/sparql", params={"query": query})
    assert response.status_code == 414
    error_of(response)


def test_result_over_the_row_limit(http):
    response = http.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert response.status_code == 400
    assert "LIMIT" in error_of(response)
    response = http.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 2000"})
    assert response.status_code == 200 and len(response.json()["results"]["bindings"]) == 2000


def test_time_limit_kills_the_query_and_the_service_recovers(server, http):
    before = children(server["pid"])
    started = time.monotonic()
    response = http.get("/sparql", params={"query": CROSS})
    assert response.status_code == 503
    assert "time limit" in error_of(response)
    assert time.monotonic() - started < 60
    deadline = time.monotonic() + 90  # the replacement worker loads the store in the background
    while http.get("/health").json()["workers"]["idle"] < 2:
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.2)
    if before:  # the worker that ran the query is gone (killed, not left running), a new one took its place
        after = children(server["pid"])
        assert len(before - after) == 1 and len(after - before) == 1
        assert not any(alive(pid) for pid in before - after)
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: http.get("/sparql", params={"query": VERDICT}), range(6)))
    assert [verdict_from(r, "json") for r in responses] == ["met"] * 6


@pytest.mark.parametrize("query", ["SELECT WHERE {", "SELECT ?s WHERE { ?s nope:x ?o }", "ASK"])
def test_syntax_error(http, query):
    response = http.get("/sparql", params={"query": query})
    assert response.status_code == 400
    error_of(response)


@pytest.mark.parametrize("params", [{}, {"query": ""}, {"query": VERDICT, "default-graph-uri": "urn:g"},
                                    {"query": VERDICT, "named-graph-uri": "urn:g"}])
def test_bad_protocol_requests(http, params):
    response = http.get("/sparql", params=params)
    assert response.status_code == 400
    error_of(response)


def test_unsupported_content_type(http):
    response = http.post("/sparql", content=b"query=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    error_of(response)


def test_unknown_path_and_wrong_method(http):
    response = http.get("/nowhere")
    assert response.status_code == 404
    error_of(response)
    response = http.delete("/sparql")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
    error_of(response)
    response = http.get("/explain")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert http.post("/health", content=b"").status_code == 405


def test_explain_json(http):
    body = (EXAMPLES / "sjia-mas.json").read_bytes()
    response = http.post("/explain", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["schema"] == "mas-kg/report/v1" and report["patient"] == "ex-sjia-mas"
    assert next(c for c in report["criteria"] if c["id"] == "mas2016")["status"] == "met"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rdflib's own parsers
@pytest.mark.parametrize("accept,fmt", [("text/turtle", "turtle"), ("application/trig", "trig"),
                                        ("application/n-quads", "nquads")])
def test_explain_rdf(http, accept, fmt):
    body = (EXAMPLES / "sjia-mas.json").read_bytes()
    response = http.post("/explain", content=body, headers={"Content-Type": "application/json", "Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(accept)
    data = rdflib.Dataset()
    data.parse(data=response.text, format=fmt)
    statuses = {str(o) for _, _, o, _ in data.quads((None, rdflib.URIRef(MKR + "status"), None, None))}
    assert "met" in statuses


def test_explain_consult_note(http):
    body = (EXAMPLES / "sjia-mas.json").read_bytes()
    response = http.post("/explain", content=body, headers={"Accept": "text/plain"})
    assert response.status_code == 200 and response.text.startswith("mas-kg consult note: patient ex-sjia-mas")


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[]", b'{"id": "x", "observations": 3}',
                                  b'{"id": "x", "observations": []}'])
def test_explain_bad_patient(http, body):
    response = http.post("/explain", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error_of(response)


def test_body_over_the_limit(http):
    response = http.post("/explain", content=b" " * 1_000_001, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "1000000" in error_of(response)
    response = http.post("/sparql", content=b"x" * 1_000_001, headers={"Content-Type": "application/sparql-query"})
    assert response.status_code == 413
    assert http.get("/health").status_code == 200


def test_post_without_content_length(server):
    address = urlsplit(server["base"])
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(b"POST /explain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split()[1] == b"411"
    assert "Content-Length" in json.loads(body)["error"]


def test_named_queries_are_listed(http):
    listing = {q["name"]: q for q in http.get("/queries").json()}
    assert "why-abnormal" in listing
    parameters = {p["name"]: p for p in listing["why-abnormal"]["parameters"]}
    assert parameters["patient"]["type"] == "string" and not parameters["patient"]["optional"]
    assert parameters["lab"]["optional"] and listing["why-abnormal"]["question"]


def test_named_query_runs(http):
    response = http.get("/queries/why-abnormal", params={"patient": "ex-sjia-mas", "lab": "ferritin"})
    assert response.status_code == 200, response.text
    rows = response.json()["results"]["bindings"]
    assert rows and {r["lab"]["value"] for r in rows} == {"ferritin"}
    assert {r["patient"]["value"] for r in rows} == {"ex-sjia-mas"}
    response = http.get("/queries/why-abnormal", params={"patient": "ex-sjia-mas", "lab": "ferritin"},
                        headers={"Accept": "text/csv"})
    assert response.text.startswith("patient,lab,")


@pytest.mark.parametrize("path,params,status", [
    ("/queries/why-abnormal", {"patient": "ex-sjia-mas", "colour": "red"}, 400),
    ("/queries/why-abnormal", {"lab": "ferritin"}, 400),
    ("/queries/no-such-query", {}, 404),
])
def test_named_query_errors(http, path, params, status):
    response = http.get(path, params=params)
    assert response.status_code == status
    error_of(response)
