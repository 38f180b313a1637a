"""``mas-kg serve``: a read-only SPARQL 1.1 Protocol endpoint, the named queries and ``POST /explain``.

Routes: ``GET /`` (an index), ``GET /health``, ``GET|POST /sparql`` (SPARQL 1.1
Protocol; the default graph is the union of all graphs), ``POST /explain`` (a
patient JSON in, its report out), ``GET /queries`` and ``GET /queries/{name}``,
and the CDS Hooks service (handlers in :mod:`kg.cds_routes`, logic in
:mod:`kg.cdshooks`): ``GET /cds-services``, ``POST /cds-services/{id}``,
``POST /cds-services/{id}/feedback`` and ``GET /cds-services/{id}/views/{uuid}``.
With ``--cds-jwks`` every ``/cds-services`` call but the views (capability
URLs) needs a client's signed JWT (:mod:`kg.cds_auth`); a refused token is 401
with a ``WWW-Authenticate`` challenge.

What is enforced, and how:

* read-only: update requests are refused (403) and every query passes
  :func:`kg.sparql.check_query` (no update, ``SERVICE`` or ``LOAD``) here and
  again in the worker; the workers hold copies of the store anyway;
* the time limit: queries run in worker processes (:mod:`kg.querypool`); a
  query past ``--timeout`` has its worker killed and gets 503;
* result size: past ``--max-rows`` rows the worker stops reading and the
  request gets 400 (add a LIMIT);
* request size: ``Content-Length`` is checked against ``--max-body`` before
  the body is read (413; no length: 411), the query text against
  ``--max-query-length`` (413 for POST, 414 for GET);
* request framing: a Content-Length that is not one decimal number (negative,
  signed, repeated with different values), a header line without a colon, or a
  chunked body is refused (400, 411) and the connection closed, so a body is
  never read as the next request; over-long lines or too many headers are 431;
* the engine is not thread-safe (it has caches): ``/explain`` holds a lock;
* the server binds 127.0.0.1 unless told otherwise, and sends no CORS headers except on the CDS
  endpoints to the origins ``--cds-cors-origin`` names (a browser-based CDS client).

Every error is ``{"error": "<one line>"}`` with its status; never a traceback.
"""

from __future__ import annotations

import email.message
import json
import re
import signal
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from .cds_routes import CdsRoutes
from .cds_routes import route as cds_route
from .cdshooks import CdsError
from .errors import InputError, QueryError, QueryRefused, QueryTimeout, QueryUnavailable
from .inputs import parse_json
from .querypool import QueryPool
from .results import choose, negotiate, render
from .sparql import NamedQuery, check_query, load_queries

__all__ = ["run", "MasKgServer", "Handler", "HttpError"]

#: path -> (methods allowed, handler method); /queries/{name} is handled by ``_named``.
_ROUTES: dict[str, tuple[tuple[str, ...], str]] = {
    "/": (("GET",), "_index"), "/health": (("GET",), "_health"), "/sparql": (("GET", "POST"), "_sparql"),
    "/explain": (("POST",), "_explain"), "/queries": (("GET",), "_queries"),
    "/cds-services": (("GET",), "_cds_discovery")}
_EXPLAIN_FORMATS = {"application/json": "json", "text/turtle": "turtle", "application/trig": "trig",
                    "application/n-quads": "nquads", "text/plain": "text"}
_JSON = "application/json; charset=utf-8"
_LENGTH = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
_DRAIN_LIMIT = 64 * 1024 * 1024  # an unread body up to this size is read and dropped, so the client sees our reply


class HttpError(Exception):
    """An error response: status, one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:500]


def _status(error: InputError) -> int:
    """403 refused, 503 past the time limit or no worker to answer, else 400 (syntax, too many rows, bad input)."""
    if isinstance(error, QueryRefused):
        return 403
    return 503 if isinstance(error, (QueryTimeout, QueryUnavailable)) else 400


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    if len(params.get(name, [])) > 1:
        raise HttpError(400, f"give the parameter {name!r} once")
    return params[name][0] if name in params else None


class MasKgServer(ThreadingHTTPServer):
    """The HTTP server: one thread per connection; queries go to the pool."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], *, pool: QueryPool, engine: Any, suite: Mapping[str, NamedQuery],
                 quads: int, patients: list[str], max_query_length: int, max_body: int, cds: Any = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.pool, self.engine, self.suite, self.quads, self.patients = pool, engine, dict(suite), quads, patients
        self.max_query_length, self.max_body = max_query_length, max_body
        self.cds = cds  # kg.cdshooks.CdsHooks
        self.engine_lock = threading.Lock()
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/sparql"


class Handler(CdsRoutes, BaseHTTPRequestHandler):
    """One request: route, check, answer; every failure becomes a JSON error."""

    server: MasKgServer
    protocol_version = "HTTP/1.1"
    server_version = "mas-kg"
    timeout = 60  # seconds a client may take to send its request

    # -- plumbing
    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = self.requestline if len(self.requestline) <= 160 else self.requestline[:150] + "..."
        self.log_message('"%s" %s', line, code)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"mas-kg: {self.client_address[0]} {format % args}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (malformed request, URI too long, ...) as JSON too."""
        self.close_connection = True
        if not hasattr(self, "headers"):  # refused before the headers were parsed (bad request line, huge header)
            self.headers = email.message.Message()
        if self.request_version == "HTTP/0.9":  # the request line was not understood: still send a status line
            self.request_version = "HTTP/1.0"
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "error"
        self._json(code, {"error": _one_line(message or phrase)})

    def _send(self, status: int, text: str, media: str, headers: Mapping[str, str] | None = None) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for name, value in self._cors().items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False, indent=1), _JSON, headers)

    def _dispatch(self) -> None:
        announced = self._announced_length()
        self._unread = announced or 0
        try:
            if announced is None:  # checked before routing: where this request ends is unknown
                raise HttpError(400, "bad Content-Length: give it once, as a decimal number of bytes")
            if self.headers.defects or self.headers.get_payload():
                # a line without a colon ends Python's header parsing: what follows it (a Content-Length, say)
                # would be ignored here yet honoured by a proxy in front, so refuse rather than guess
                self.close_connection = True
                raise HttpError(400, "malformed header section: every header line must be 'Name: value'")
            url = urlsplit(self.path)
            path = url.path
            allowed, route = _ROUTES.get(path) or ((("GET",), "_named") if path.startswith("/queries/") else
                                                   cds_route(path) if path.startswith("/cds-services/") else
                                                   ((), ""))
            if not route:
                raise HttpError(404, f"no resource {path[:200]!r}; see GET / for the endpoints")
            if self.command == "OPTIONS" and path.startswith("/cds-services"):
                self._preflight(allowed)
                return self._drain()
            if self.command not in allowed:
                raise HttpError(405, f"{self.command} is not allowed on {path}; use {' or '.join(allowed)}",
                                {"Allow": ", ".join(allowed)})
            getattr(self, route)(url)
        except (HttpError, CdsError) as error:
            self._fail(error.status, error.message, error.headers)
        except InputError as error:
            self._fail(_status(error), str(error), {"Retry-After": "5"} if _status(error) == 503 else None)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug: log it, answer one line
            traceback.print_exc(file=sys.stderr)
            self._fail(500, "internal error (logged on the server)")
        self._drain()

    def _fail(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        if self._unread:
            self.close_connection = True
        self._json(status, {"error": _one_line(message)}, headers)

    def _announced_length(self) -> int | None:
        """The body's announced length (0 if none); None if Content-Length is malformed, negative or repeated
        with different values (RFC 9112 section 6.3).  Then, or with a Transfer-Encoding, the end of the body
        is unknown and the connection is closed after the answer: reading on would take body bytes for the next
        request (request smuggling)."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # we never read chunked bodies; the connection cannot be reused
        values = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not values:
            return 0
        if len(values) > 1 or not _LENGTH.fullmatch(next(iter(values))):
            self.close_connection = True
            return None
        return int(next(iter(values)))

    def _drain(self) -> None:
        """Read and drop a body we refused (up to a limit), so that closing does not reset the connection."""
        left, self._unread = min(self._unread, _DRAIN_LIMIT), 0
        if left:
            self.close_connection = True
            try:
                self.connection.settimeout(5)
                while left > 0 and (chunk := self.rfile.read(min(left, 65536))):
                    left -= len(chunk)
            except OSError:
                pass

    def _body(self) -> bytes:
        """The request body, after checking its announced length."""
        raw = self.headers.get("Content-Length")
        if raw is None or self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # a body may follow that we will not read
            raise HttpError(411, "a POST needs a Content-Length header (chunked bodies are not accepted)")
        length = self._announced_length()
        if length is None:
            raise HttpError(400, f"bad Content-Length {raw[:40]!r}")
        if length > self.server.max_body:
            raise HttpError(413, f"the request body is {length} bytes; the limit is {self.server.max_body}")
        body = self.rfile.read(length)
        self._unread = 0
        if len(body) < length:
            self.close_connection = True
            raise HttpError(400, "the request body ended before its Content-Length")
        return body

    def _media(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    # -- routes
    def _index(self, url: Any) -> None:
        self._json(200, {"service": "mas-kg", "read_only": True, "endpoints": {
            "GET /sparql?query=...": "SPARQL 1.1 query (the default graph is the union of all graphs)",
            "POST /sparql": "SPARQL 1.1 query as application/x-www-form-urlencoded (query=) or "
                            "application/sparql-query",
            "POST /explain": "a patient JSON in; its report out (JSON, or by Accept: text/turtle, application/trig, "
                             "application/n-quads, text/plain for a consult note)",
            "GET /queries": "the named queries with their parameters",
            "GET /queries/{name}?param=value": "run a named query",
            "GET /health": "status, quads and patients",
            "GET /cds-services": "CDS Hooks discovery: the patient-view service mas-kg-patient-view",
            "POST /cds-services/mas-kg-patient-view": "CDS Hooks call (patient-view, FHIR prefetch) -> cards",
            "POST /cds-services/mas-kg-patient-view/feedback": "CDS Hooks feedback on a card (accepted/overridden)",
            "GET /cds-services/mas-kg-patient-view/views/{uuid}": "the causal graph linked from a card (HTML)"},
            "cds_hooks": {"jwt_required": self.server.cds is not None and self.server.cds.verifier is not None},
            "limits": {"timeout_seconds": self.server.pool.timeout, "max_rows": self.server.pool.max_rows,
                       "max_query_length": self.server.max_query_length, "max_body": self.server.max_body}})

    def _health(self, url: Any) -> None:
        pool = self.server.pool
        self._json(200, {"status": "ok", "quads": self.server.quads, "patients": self.server.patients,
                         "workers": {"size": pool.size, "idle": pool.idle()}})

    def _sparql(self, url: Any) -> None:
        params = parse_qs(url.query, keep_blank_values=True)
        if self.command == "GET":
            if "update" in params:
                raise HttpError(403, "updates are refused: this endpoint is read-only")
            query, too_long, given = _single(params, "query"), 414, params
        else:
            media = self._media()
            if media == "application/sparql-update":
                raise HttpError(403, "updates are refused: this endpoint is read-only")
            if media not in ("application/x-www-form-urlencoded", "application/sparql-query"):
                raise HttpError(415, "POST a query as application/x-www-form-urlencoded (query=...) or "
                                     "application/sparql-query")
            body = self._body()
            try:
                text = body.decode("utf-8")
                form = parse_qs(text, keep_blank_values=True, errors="strict") \
                    if media == "application/x-www-form-urlencoded" else {}
            except UnicodeDecodeError:
                raise HttpError(400, "the request body is not UTF-8") from None
            if "update" in form:
                raise HttpError(403, "updates are refused: this endpoint is read-only")
            query = text if media == "application/sparql-query" else _single(form, "query")
            too_long, given = 413, {**params, **form}
        if query is None or not query.strip():
            raise HttpError(400, "no query: give query=... (GET or form POST) or POST application/sparql-query")
        if "default-graph-uri" in given or "named-graph-uri" in given:
            raise HttpError(400, "default-graph-uri and named-graph-uri are not supported: the default graph is "
                                 "the union of all graphs; use GRAPH ?g to reach named graphs")
        if len(query) > self.server.max_query_length:
            raise HttpError(too_long, f"the query is {len(query)} characters long; "
                                      f"the limit is {self.server.max_query_length}")
        check_query(query, max_length=self.server.max_query_length)
        self._answer(query, None)

    def _queries(self, url: Any) -> None:
        self._json(200, [{"name": q.name, "question": q.question, "url": f"/queries/{q.name}",
                          "parameters": [{"name": p.name, "type": p.type, "optional": p.optional, "text": p.text}
                                         for p in q.parameters], "example": q.example}
                         for q in self.server.suite.values()])

    def _named(self, url: Any) -> None:
        name = unquote(url.path[len("/queries/"):])
        named = self.server.suite.get(name)
        if named is None:
            raise HttpError(404, f"no named query {name[:100]!r}; see GET /queries")
        params = parse_qs(url.query, keep_blank_values=True)
        values = {key: _single(params, key) or "" for key in params}
        self._answer(named.text, named.bind(values))

    def _answer(self, query: str, bindings: Mapping[str, Any] | None) -> None:
        """Run a query and answer in the format the Accept header prefers."""
        accept = self.headers.get("Accept")
        table, graph = negotiate(accept), negotiate(accept, graph=True)
        if table is None and graph is None:
            raise HttpError(406, "the Accept header allows none of: application/sparql-results+json, "
                                 "application/sparql-results+xml, text/csv, text/tab-separated-values, text/turtle, "
                                 "application/n-triples")
        result = self.server.pool.query(query, bindings=bindings)
        chosen = graph if result.kind == "graph" else table
        if chosen is None:
            raise HttpError(406, f"the query gives {'RDF triples' if result.kind == 'graph' else 'a result set'}; "
                                 "the Accept header allows no format for it")
        media, text = render(result, chosen)
        self._send(200, text, media)

    def _explain(self, url: Any) -> None:
        media = self._media()
        if media and media != "application/json" and not media.endswith("+json"):
            raise HttpError(415, "POST the patient as application/json (DESIGN.md section 3)")
        chosen = choose(self.headers.get("Accept"), _EXPLAIN_FORMATS)
        if chosen is None:
            raise HttpError(406, f"the Accept header allows none of: {', '.join(_EXPLAIN_FORMATS)}")
        body = self._body()
        try:
            data = parse_json(body.decode("utf-8"))  # numbers as exact decimals, as from a file
        except UnicodeDecodeError:
            raise HttpError(400, "the patient is not UTF-8") from None
        except ValueError as error:
            raise HttpError(400, f"the patient is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise HttpError(400, "the patient must be a JSON object (DESIGN.md section 3)")
        engine = self.server.engine
        with self.server.engine_lock:
            patient = engine.read(data)
            if not patient.observations:
                raise InputError("no usable observation")
            report = engine.explain(patient)
        if chosen == "json":
            self._send(200, report.to_json() + "\n", _JSON)
        elif chosen == "text":
            self._send(200, report.to_text(), "text/plain; charset=utf-8")
        else:
            media = next(m for m, name in _EXPLAIN_FORMATS.items() if name == chosen)
            self._send(200, report.serialize(chosen), media + "; charset=utf-8")

def _check_args(args: Any) -> None:
    for name in ("port", "workers", "timeout", "max_rows", "max_query_length", "max_body"):
        value = getattr(args, name)
        if not (0 <= value <= 65535 if name == "port" else 0 < value < float("inf")):
            raise InputError(f"--{name.replace('_', '-')}: {value:g} is out of range")


def _suite() -> dict[str, NamedQuery]:
    try:
        return load_queries()
    except QueryError as error:
        sys.stderr.write(f"mas-kg: warning: no named queries: {error}\n")
        return {}


def run(args: Any, *, load_patients: Callable[[Any, Any, list[str]], None]) -> int:
    """Serve until SIGTERM or Ctrl-C; return 0 after a clean shutdown (the workers stopped)."""
    from .cdshooks import CdsHooks
    from .engine import Engine
    from .store import open_store

    _check_args(args)
    cds = CdsHooks.from_args(args)  # a bad key set exits 2 before anything starts
    if cds.verifier is None:
        sys.stderr.write("mas-kg: warning: CDS Hooks JWT verification is off (no --cds-jwks): any client may "
                         "call /cds-services\n")
    engine = Engine()
    store = open_store(kb=engine.kb)
    load_patients(engine, store, list(args.patient))
    quads, patients = len(store), sorted(store.patients)
    pool = QueryPool(store.dump(), workers=args.workers, timeout=args.timeout, max_rows=args.max_rows,
                     max_query_length=args.max_query_length)
    del store  # the workers hold the data now
    stop = threading.Event()  # from here on SIGINT and SIGTERM ask for a clean stop (no dump file left behind)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        pool.start()
        try:
            httpd = MasKgServer((args.host, args.port), pool=pool, engine=engine, suite=_suite(), quads=quads,
                                patients=patients, max_query_length=args.max_query_length, max_body=args.max_body,
                                cds=cds)
        except OSError as error:
            raise InputError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="mas-kg-http",
                                  daemon=True)
        thread.start()
        sys.stdout.write(f"mas-kg: serving {httpd.url} ({quads} quads, {len(patients)} patients; Ctrl-C to stop)\n")
        sys.stdout.flush()
        try:
            while thread.is_alive() and not stop.wait(0.5):
                pass
        finally:
            httpd.shutdown()
            httpd.server_close()
    finally:
        pool.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stderr.write("mas-kg: stopped\n")
    return 0
