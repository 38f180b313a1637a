"""The ``mas-kg`` command line: ``explain``, ``graph``, ``query``, ``serve``, ``screen`` and ``check``.

Exit status: 0 success, 1 ``check`` found problems, 2 bad input (one line on
stderr naming the problem and where; nothing on stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from .atomic import write_text_atomic
from .errors import InputError, OntologyError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors are bad input too: exit 2, one line
        sys.stderr.write(f"mas-kg: error: {message}\n")
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mas-kg", description="MAS/HLH knowledge-graph reasoning engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    explain = sub.add_parser("explain", help="evaluate criteria and explain every abnormal finding of a patient")
    explain.add_argument("file", help="patient JSON (DESIGN.md section 3)")
    explain.add_argument("--format", choices=["json", "text", "turtle", "trig", "nquads", "html"], default="json",
                         help="json (the report contract), text (a consult note), or RDF: turtle (one graph), "
                              "trig or nquads (the asserted and inferred named graphs), or html (the interactive "
                              "explanation graph, self-contained)")
    _evaluation_options(explain)
    graph = sub.add_parser("graph", help="the knowledge graph (or, with --patient, a patient's explanations) as an "
                                         "interactive HTML page that works offline")
    graph.add_argument("--patient", metavar="FILE", help="patient JSON: draw this patient's explanation view")
    _evaluation_options(graph)
    query = sub.add_parser("query", help="run a SPARQL query (a name from queries/ or a .rq file) on the ontology "
                                         "and the given patients")
    query.add_argument("query", nargs="?", help="a query name (see --list) or a .rq file")
    query.add_argument("--patient", action="append", default=[], metavar="FILE",
                       help="a patient JSON to evaluate and load (repeatable)")
    query.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a query parameter, bound as an RDF term (repeatable)")
    query.add_argument("--format", choices=["table", "json", "csv", "tsv", "xml"], default="table")
    query.add_argument("--backend", choices=["oxigraph", "rdflib"], default="oxigraph",
                       help="the store: oxigraph (embedded, fast; default) or rdflib (pure Python)")
    query.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="time limit (default 60)")
    query.add_argument("--list", action="store_true", help="list the query suite with its questions and parameters")
    serve = sub.add_parser("serve", help="a read-only SPARQL 1.1 Protocol endpoint (/sparql), POST /explain "
                                         "and a CDS Hooks service (/cds-services)")
    serve.add_argument("--patient", action="append", default=[], metavar="FILE",
                       help="a patient JSON to evaluate and load (repeatable)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=int, default=2, help="query worker processes (default 2)")
    serve.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                       help="per-query time limit; a query past it is killed (default 10)")
    serve.add_argument("--max-rows", type=int, default=10_000, help="result-size limit in rows (default 10000)")
    serve.add_argument("--max-query-length", type=int, default=20_000,
                       help="longest query accepted, in characters (default 20000)")
    serve.add_argument("--max-body", type=int, default=1_000_000,
                       help="largest request body accepted, in bytes (default 1000000)")
    cds = serve.add_argument_group("CDS Hooks (GET /cds-services and the patient-view service)")
    cds.add_argument("--cds-jwks", metavar="FILE",
                     help="JSON Web Key Set of the trusted CDS clients' public keys: every /cds-services call then "
                          "needs their signed JWT (without it, verification is off and a warning is printed)")
    cds.add_argument("--cds-issuer", action="append", metavar="ISS",
                     help="accepted JWT iss (repeatable); if given, other issuers are refused")
    cds.add_argument("--cds-base-url", "--cds-audience", dest="cds_base_url", metavar="URL",
                     help="this server's public base URL as clients call it (e.g. https://cds.example.org behind a "
                          "TLS proxy): the expected JWT aud is URL + the endpoint path, and card links start with "
                          "it; default http://<Host header>")
    cds.add_argument("--cds-algorithms", metavar="ALG,ALG",
                     help="accepted JWT signature algorithms (default ES384,RS384; never none or HMAC)")
    cds.add_argument("--cds-view-ttl", type=float, default=3600.0, metavar="SECONDS",
                     help="how long the causal-graph view linked from a card stays available (default 3600)")
    cds.add_argument("--cds-cors-origin", action="append", metavar="ORIGIN",
                     help="let a browser-based CDS client from ORIGIN (scheme://host[:port], or *) call the CDS "
                          "endpoints (CORS; repeatable; default: none)")
    cds.add_argument("--cds-feedback-log", metavar="FILE",
                     help="append each card feedback item as one JSON line to this file (always logged on stderr)")
    screen = sub.add_parser("screen", help="screen a cohort (long CSV/Parquet or OMOP CDM tables): every criteria set "
                                           "at every time point, as table queries on DuckDB (default) or Spark")
    screen.add_argument("input", help="long-format .csv or .parquet (DESIGN.md section 3), or a directory of OMOP "
                                      "CDM tables (person, measurement, condition_occurrence, concept)")
    screen.add_argument("--out", required=True, help="result table, .parquet or .csv: one row per patient and time point")
    screen.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"],
                        help="duckdb (embedded, default) or spark (pyspark; MAS_KG_SPARK_MASTER names a cluster)")
    screen.add_argument("--window", default="72h", metavar="DURATION",
                        help="look-back window, e.g. 72h, 3d, 90m, or none (default 72h, as explain)")
    screen.add_argument("--flagged", metavar="FILE.csv",
                        help="also write the rows of every patient meeting some criterion, as long CSV for mas-kg explain")
    screen.add_argument("--criteria", metavar="ID,ID", help="only these criteria sets, e.g. hlh2004,mas2016 (default: all)")
    screen.add_argument("--summary", metavar="FILE.json", help="also write the summary as JSON")
    check = sub.add_parser("check", help="ontology QA: parse, reason (HermiT), labels, definitions, sources")
    check.add_argument("--ontology", help="ontology directory (default: the installed one)")
    check.add_argument("--no-reasoner", action="store_true", help="skip the HermiT consistency check")
    check.add_argument("--seeds", help="seed documents directory, to check cited sections exist")
    return parser


def _evaluation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--at", help="evaluation time (ISO 8601); default: the latest observation time")
    parser.add_argument("--out", help="write to this file (atomically) instead of stdout")
    parser.add_argument("--window", type=float, metavar="HOURS",
                        help="look-back window: a timed value older than this before --at is not in force "
                             "(default 72; 0 = only values at --at; use a large number for no limit)")
    parser.add_argument("--pretest", action="append", metavar="P|ID=P",
                        help="pre-test probability for the post-test probability of every criteria set (P), "
                             "or of one set (ID=P); repeatable; default: the ontology's documented default by context")
    parser.add_argument("--strict", action="store_true", help="exit 2 if any observation is rejected")


def _write(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    if Path(out).is_dir():
        raise InputError(f"--out {out}: is a directory")
    try:
        write_text_atomic(out, text)
    except OSError as error:
        raise InputError(f"--out {out}: cannot write there ({error.strerror or error})") from None


def _evaluate(args: argparse.Namespace, file: str) -> tuple[list, bool]:
    """The reports of a patient file with ``explain``'s options, and whether its format can hold several
    patients (JSON: one report; long CSV or FHIR Bundle: one per patient)."""
    from .engine import Engine

    engine = Engine()
    patients, many = _read_patients(engine, file)
    rejected = sum(len(p.rejected) for p in patients)
    if args.strict and rejected:
        raise InputError(f"{rejected} observation(s) rejected (--strict)", where=file)
    window = 72.0 if args.window is None else args.window
    if not (window >= 0 and window != float("inf")):
        raise InputError(f"--window: {window:g} is not a number of hours >= 0")
    return [engine.explain(p, at=args.at, window=timedelta(hours=window), pretest=_pretest(args.pretest))
            for p in patients], many


def _one(reports: list, file: str, what: str):
    if len(reports) != 1:
        raise InputError(f"{what} shows one patient; this file holds {len(reports)}", where=file)
    return reports[0]


def _explain(args: argparse.Namespace) -> int:
    reports, many = _evaluate(args, args.file)
    if args.format == "json":  # a CSV or a FHIR Bundle may hold many patients: its JSON is always an array
        text = (json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False) if many
                else reports[0].to_json()) + "\n"
    elif args.format == "text":
        text = "\n".join(r.to_text() for r in reports)
    elif args.format == "html":
        text = _one(reports, args.file, "--format html").to_html()
    else:  # RDF: several patients' named graphs in one document
        from .report import merged_rdf

        text = merged_rdf(reports, args.format)
    _write(text, args.out)
    return 0


def _graph(args: argparse.Namespace) -> int:
    from .views import graph_view

    if args.patient:
        page = graph_view(report=_one(_evaluate(args, args.patient)[0], args.patient, "mas-kg graph --patient"))
    else:
        given = [name for name in ("at", "window", "pretest") if getattr(args, name) is not None]
        if given or args.strict:
            raise InputError(f"--{(given or ['strict'])[0]} applies to a patient: add --patient FILE")
        page = graph_view()
    _write(page.html, args.out)
    return 0


def _read_patients(engine, file: str) -> tuple[list, bool]:
    """The patients of a file in any format (kg.inputs), and whether the format can hold several: one warning
    line per rejected observation, naming its CSV line or Bundle entry; exit 2 if a patient has no usable
    observation."""
    from .inputs import read_patient_file

    read = read_patient_file(file, engine.kb)
    for patient, where in read.patients:
        for rejected in patient.rejected:
            code = f" ({rejected.code})" if rejected.code else ""
            place = {"json": f"{file}: observation {rejected.index}",
                     "csv": f"{file}:{where[rejected.index].removeprefix('line ')}: patient {patient.id}: "
                            f"observation {rejected.index}",
                     "fhir": f"{file}: {where[rejected.index]}"}[read.format]
            sys.stderr.write(f"mas-kg: warning: {place}{code}: {rejected.reason}\n")
        if not patient.observations:
            raise InputError(f"no usable observation{f' for patient {patient.id}' if read.many else ''}", where=file)
    return [patient for patient, _ in read.patients], read.many


def _load_patients(engine, store, files: list[str]) -> None:
    """Evaluate each patient of each file and add its report to the store (warnings as for ``explain``)."""
    for file in files:
        for patient in _read_patients(engine, file)[0]:
            store.add_report(engine.explain(patient), where=file)


def _query(args: argparse.Namespace) -> int:
    from .errors import QueryError
    from .results import render
    from .sparql import load_queries, read_query
    from .store import open_store

    suite = load_queries()
    if args.list:
        for named in suite.values():
            params = ", ".join(f"{p.name}{'?' if p.optional else ''}" for p in named.parameters)
            sys.stdout.write(f"{named.name}({params}): {named.question}\n")
        return 0
    if not args.query:
        raise QueryError("name a query (see mas-kg query --list) or a .rq file")
    if args.query in suite:
        named = suite[args.query]
    elif args.query.endswith(".rq") or Path(args.query).is_file():
        named = read_query(Path(args.query))
    else:
        raise QueryError(f"no query named {args.query!r} (see mas-kg query --list) and no such file")
    values = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise QueryError(f"--param {item!r}: expected KEY=VALUE")
        values[key.strip()] = value
    bindings = named.bind(values)
    if not (args.timeout > 0):
        raise QueryError(f"--timeout: {args.timeout:g} is not a positive number of seconds")
    from .engine import Engine

    engine = Engine()
    store = open_store(backend=args.backend, kb=engine.kb)
    _load_patients(engine, store, args.patient)
    result = store.query(named.text, bindings=bindings, timeout=args.timeout)
    _, text = render(result, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server import run

    return run(args, load_patients=_load_patients)


def _pretest(values: list[str] | None) -> dict[str, float | str] | None:
    if not values:
        return None
    out: dict[str, float | str] = {}
    for value in values:
        key, sep, number = value.partition("=")
        out[key.strip() if sep else "*"] = number.strip() if sep else value.strip()
    return out


def _duration(text: str) -> timedelta | None:
    """``72h``, ``3d``, ``90m``, ``3600s`` or a bare number of hours; ``none`` for no limit."""
    value = text.strip().lower()
    if value == "none":
        return None
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "h")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = float("nan")
    if not (seconds >= 0 and seconds != float("inf")):
        raise InputError(f"--window {text!r}: expected a duration such as 72h, 3d or none")
    return timedelta(seconds=seconds)


def _screen(args: argparse.Namespace) -> int:
    from .screen import screen

    if args.summary is not None and not args.summary.endswith(".json"):
        raise InputError(f"--summary {args.summary}: the name must end in .json")
    summary = screen(args.input, out=args.out, engine=args.engine, window=_duration(args.window),
                     flagged=args.flagged, progress=sys.stderr.isatty(),
                     criteria=args.criteria.split(",") if args.criteria is not None else None)
    for reason, count in sorted(summary.rejected.items(), key=lambda kv: -kv[1])[:20]:
        sys.stderr.write(f"mas-kg: warning: {args.input}: {count} row(s) rejected: {reason}\n")
    if args.summary:
        write_text_atomic(args.summary, json.dumps(summary.to_dict(), indent=2) + "\n")
    sys.stdout.write(summary.to_text() + "\n")
    if args.flagged:
        sys.stdout.write(f"{summary.flagged_patients} flagged patient(s) written to {args.flagged}: "
                         f"mas-kg explain {args.flagged} --at TIME\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .check import run_checks

    problems = run_checks(Path(args.ontology) if args.ontology else None, reasoner=not args.no_reasoner,
                          seeds=Path(args.seeds) if args.seeds else None, log=sys.stderr)
    for problem in problems:
        sys.stdout.write(f"FAIL {problem}\n")
    sys.stdout.write("check passed\n" if not problems else f"check failed: {len(problems)} problem(s)\n")
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands = {"explain": _explain, "graph": _graph, "query": _query, "serve": _serve, "screen": _screen,
                    "check": _check}
        return commands[args.command](args)
    except InputError as error:
        sys.stderr.write(f"mas-kg: error: {error}\n")
        return 2
    except OntologyError as error:
        sys.stderr.write(f"mas-kg: error: ontology: {error}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
