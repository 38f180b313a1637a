"""``mas-kg serve`` limits that tests/test_server.py does not reach: path traversal on every route that takes a
path segment, CORS with an Origin header, and malformed or hostile request framing (sent byte for byte on a raw
socket: an HTTP client library would refuse to send most of it, or normalise the path first).

Every refusal must be a 4xx one-line JSON error with a status line, and the server must log no traceback
(``stop_server`` checks its stderr at the end of the module).
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from test_server import SERVER_ARGS, start_server, stop_server

pytestmark = pytest.mark.slow

ALLOWED = "https://cds-client.example.org"
# What must never come back: /etc/passwd, the project's files, a named query's source.
SECRETS = (b"root:", b"[project]", b"PREFIX", b"import ", b"#!/")


@pytest.fixture(scope="module")
def server():
    process, url, stderr = start_server(SERVER_ARGS + ["--cds-cors-origin", ALLOWED])
    address = urlsplit(url)
    yield {"base": url[: -len("/sparql")], "address": (address.hostname, address.port)}
    stop_server(process, stderr)  # asserts: clean exit, no traceback in the log


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server["base"], timeout=30, trust_env=False) as client:
        yield client


def raw(server, request: bytes, *, read_timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return the status, headers and body of the reply (the server closes or we stop
    after Content-Length).  A reply without a status line fails the test."""
    with socket.create_connection(server["address"], timeout=read_timeout) as connection:
        connection.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := connection.recv(65536)):
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1."), f"no status line in the reply: {reply[:200]!r}"
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length and (chunk := connection.recv(65536)):
            body += chunk
    return int(lines[0].split()[1]), headers, body


def one_line_error(status: int, body: bytes) -> str:
    assert 400 <= status < 500, (status, body[:300])
    assert not any(secret in body for secret in SECRETS), body[:300]
    message = json.loads(body)["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1")


TRAVERSALS = ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd",
              "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "%252e%252e%252fetc%252fpasswd", "..\\..\\etc\\passwd", "..%5c..%5cpyproject.toml", "/etc/passwd",
              "%2fetc%2fpasswd", "C:\\Windows\\win.ini", "why-abnormal%00.rq", "%00", "..%00/etc/passwd",
              "....//....//etc/passwd", "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "../kg/queries/why-abnormal.rq",
              "../pyproject.toml"]
ROUTES = ["/queries/{}", "/queries/why-abnormal/{}", "/cds-services/{}", "/cds-services/mas-kg-patient-view/views/{}",
          "/cds-services/{}/views/x", "/{}", "/static/{}", "/assets/{}"]


@pytest.mark.parametrize("route", ROUTES)
def test_no_path_traversal(server, route):
    for payload in TRAVERSALS:
        status, _, body = raw(server, get(route.format(payload)))
        one_line_error(status, body)
        status, _, body = raw(server, get(route.format(payload)).replace(b"GET", b"POST", 1))
        one_line_error(status, body)


def test_named_query_by_name_still_works(http):
    """The traversal refusals above are not a blanket refusal of /queries/{name}."""
    response = http.get("/queries/primary-hlh-genes")
    assert response.status_code == 200 and response.json()["results"]["bindings"]


@pytest.mark.parametrize("path", ["/", "/health", "/queries", "/sparql?query=ASK%7B%7D", "/queries/primary-hlh-genes",
                                  "/nowhere"])
@pytest.mark.parametrize("origin", [ALLOWED, "https://evil.example.org", "null"])
def test_no_cors_headers_outside_cds(http, path, origin):
    for method in ("GET", "OPTIONS", "POST"):
        response = http.request(method, path, headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
        assert not [h for h in response.headers if h.startswith("access-control-")], (method, response.headers)
    response = http.post("/explain", content=b"{}", headers={"Origin": origin, "Content-Type": "application/json"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_on_cds_only_for_the_configured_origin(http):
    allowed = http.get("/cds-services", headers={"Origin": ALLOWED})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "origin" in allowed.headers["vary"].lower()
    for origin in ("https://evil.example.org", "null", ALLOWED + ".evil.example.org", ALLOWED.upper(), ALLOWED + "/"):
        other = http.get("/cds-services", headers={"Origin": origin})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers, origin
        preflight = http.options("/cds-services/mas-kg-patient-view",
                                 headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers


BODY = b'{"id": "x", "observations": []}'
POST = b"POST /explain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
FRAMING = {
    "negative length": POST + b"Content-Length: -5\r\n\r\n" + BODY,
    "non-numeric length": POST + b"Content-Length: abc\r\n\r\n" + BODY,
    "signed length": POST + b"Content-Length: +31\r\n\r\n" + BODY,
    "superscript digit": POST + "Content-Length: \u00b231\r\n\r\n".encode("latin-1") + BODY,
    "two lengths": POST + b"Content-Length: 0\r\nContent-Length: 31\r\n\r\n" + BODY,
    "length list": POST + b"Content-Length: 31, 31\r\n\r\n" + BODY,
    "chunked": POST + b"Transfer-Encoding: chunked\r\n\r\n1f\r\n" + BODY + b"\r\n0\r\n\r\n",
    "chunked and length": POST + b"Transfer-Encoding: chunked\r\nContent-Length: 31\r\n\r\n1f\r\n" + BODY
                          + b"\r\n0\r\n\r\n",
    "chunked sparql": b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: application/sparql-query\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n5\r\nASK{}\r\n0\r\n\r\n",
    "bad length on a GET": b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "huge header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    "many headers": b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
    "header without colon": b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\nContent-Length: 3\r\n\r\nabc",
    "garbage request line": b"GARBAGE\r\n\r\n",
    "HTTP/2 request line": b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
    "bad version": b"GET /health HTTP/x.y\r\nHost: x\r\n\r\n",
    "huge request line": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("name", list(FRAMING))
def test_bad_framing_is_a_one_line_4xx(server, name):
    status, headers, body = raw(server, FRAMING[name])
    one_line_error(status if status != 505 else 400, body)  # 505 for HTTP/2.0 is fine: still a JSON error
    assert headers.get("content-type", "").startswith("application/json")


@pytest.mark.parametrize("name", ["negative length", "two lengths", "chunked", "non-numeric length"])
def test_a_body_of_unknown_length_is_never_read_as_the_next_request(server, name):
    """Request smuggling: after a refused body, the connection closes; the body is never parsed as a request."""
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    request = FRAMING[name].replace(BODY, smuggled).replace(b"1f\r\n", b"%x\r\n" % len(smuggled))
    with socket.create_connection(server["address"], timeout=20) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):  # returns b"" once the server closes
            reply += chunk
    assert reply.count(b"HTTP/1.1 ") == 1 and b'"status": "ok"' not in reply, reply[:500]


def test_the_server_still_serves(http):
    """After every hostile request above, ordinary requests still work (nothing wedged)."""
    assert http.get("/health").json()["status"] == "ok"
    response = http.post("/sparql", content=b"ASK {}", headers={"Content-Type": "application/sparql-query"})
    assert response.status_code == 200 and response.json()["boolean"] is True
