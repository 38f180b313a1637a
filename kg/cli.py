"""The ``mas-kg`` command line: ``explain`` and ``check``.

Exit status: 0 success, 1 ``check`` found problems, 2 bad input (one line on
stderr naming the problem and where; nothing on stdout).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

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
    explain.add_argument("--format", choices=["json", "text"], default="json")
    explain.add_argument("--at", help="evaluation time (ISO 8601); default: the latest observation time")
    explain.add_argument("--out", help="write the report to this file (atomically) instead of stdout")
    explain.add_argument("--window", type=float, default=72.0, metavar="HOURS",
                         help="look-back window: a timed value older than this before --at is not in force "
                              "(default 72; 0 = only values at --at; use a large number for no limit)")
    explain.add_argument("--pretest", action="append", metavar="P|ID=P",
                         help="pre-test probability for the post-test probability of every criteria set (P), "
                              "or of one set (ID=P); repeatable; default: the ontology's documented default by context")
    explain.add_argument("--strict", action="store_true", help="exit 2 if any observation is rejected")
    check = sub.add_parser("check", help="ontology QA: parse, reason (HermiT), labels, definitions, sources")
    check.add_argument("--ontology", help="ontology directory (default: the installed one)")
    check.add_argument("--no-reasoner", action="store_true", help="skip the HermiT consistency check")
    check.add_argument("--seeds", help="seed documents directory, to check cited sections exist")
    return parser


def _write(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    target = Path(out)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".mas-kg-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _explain(args: argparse.Namespace) -> int:
    from .engine import Engine

    engine = Engine()
    patient = engine.read(args.file)
    for rejected in patient.rejected:
        sys.stderr.write(f"mas-kg: warning: {args.file}: observation {rejected.index}"
                         f"{' (' + rejected.code + ')' if rejected.code else ''}: {rejected.reason}\n")
    if not patient.observations:
        raise InputError("no usable observation", where=args.file)
    if args.strict and patient.rejected:
        raise InputError(f"{len(patient.rejected)} observation(s) rejected (--strict)", where=args.file)
    if not (args.window >= 0 and args.window != float("inf")):
        raise InputError(f"--window: {args.window:g} is not a number of hours >= 0")
    report = engine.explain(patient, at=args.at, window=timedelta(hours=args.window), pretest=_pretest(args.pretest))
    text = report.to_json() + "\n" if args.format == "json" else report.to_text()
    _write(text, args.out)
    return 0


def _pretest(values: list[str] | None) -> dict[str, float | str] | None:
    if not values:
        return None
    out: dict[str, float | str] = {}
    for value in values:
        key, sep, number = value.partition("=")
        out[key.strip() if sep else "*"] = number.strip() if sep else value.strip()
    return out


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
        return _explain(args) if args.command == "explain" else _check(args)
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
