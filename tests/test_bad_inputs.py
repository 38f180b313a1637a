"""The bad-input corpus (tests/corpus/manifest.json) through every file reader: patient JSON, long CSV, FHIR,
SPARQL query files and OMOP CDM directories (HTTP requests: test_bad_inputs_http.py).

A wholly bad input gives exit 2, one line naming the problem and the file, nothing on stdout and no output file;
a partly valid one gives exit 0 with every observation used or listed in ``observations.rejected`` with its reason
(DESIGN.md section 4).  Most entries run ``kg.cli.main`` in this process (the CLI's own code, minus the ~1.5 s
interpreter start); ``test_as_a_user_runs_it`` runs a sample of each reader as a real subprocess.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from corpus_support import MANIFEST, check_fatal, check_partial, ids, materialise
from kg.cli import main

PATIENT_FILES = [e for e in MANIFEST if e["reader"] in ("json", "csv", "fhir")]
SPARQL = [e for e in MANIFEST if e["reader"] == "sparql"]
OMOP = [e for e in MANIFEST if e["reader"] == "omop"]
SCREEN = [pytest.param(e, marks=pytest.mark.xfail(reason=e["xfail"], strict=True)) if "xfail" in e else e
          for e in MANIFEST if e["reader"] == "screen"]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``mas-kg ARGS`` in this process: exit status, stdout, stderr (an exception escaping is a traceback)."""
    try:
        rc = main(list(args))
    except SystemExit as exit_:
        rc = exit_.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_corpus_is_large_and_covers_every_reader():
    readers = {e["reader"] for e in MANIFEST}
    assert len(MANIFEST) >= 100 and readers == {"json", "csv", "fhir", "sparql", "omop", "screen", "http"}
    files = {e["file"] for e in MANIFEST}
    assert len(files) == len(MANIFEST), "each entry once"
    for entry in MANIFEST:
        assert entry["expect"] in (0, 2) or entry["reader"] == "http", entry
        if entry["reader"] in ("json", "csv", "fhir", "sparql") and "generate" not in entry:
            assert (Path(__file__).parent / "corpus" / entry["file"]).is_file(), entry["file"]


@pytest.mark.parametrize("entry", PATIENT_FILES, ids=ids(PATIENT_FILES))
def test_patient_file(entry, tmp_path, capsys):
    path = materialise(entry, tmp_path)
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    rc, stdout, stderr = cli(capsys, "explain", str(path), "--out", str(out), *entry.get("args", []))
    if entry["expect"] == 2:
        check_fatal(entry, rc, stdout, stderr, where=str(path))
        assert not any(out.parent.iterdir()), "no output file, not even a temporary one"
        return
    reports = check_partial(entry, rc, stdout, stderr, out, where=str(path))
    if entry["reader"] == "json" and reports:  # the count given is the file's own, not the reader's
        assert reports[0]["observations"]["given"] == len(json.loads(path.read_text())["observations"])
    assert [p.name for p in out.parent.iterdir()] == ["report.json"], "no temporary file left"


def test_strict_turns_any_rejection_into_exit_2(tmp_path, capsys):
    """Every partly valid patient file is refused as a whole under --strict, with no output file."""
    for entry in [e for e in PATIENT_FILES if e["expect"] == 0 and e["rejected"]]:
        out = tmp_path / "r.json"
        rc, stdout, stderr = cli(capsys, "explain", str(materialise(entry, tmp_path)), "--out", str(out), "--strict")
        check_fatal({"message": "rejected (--strict)", "warnings": len(entry["rejected"])}, rc, stdout, stderr,
                    where=entry["file"])
        assert not out.exists()


def test_failure_keeps_the_previous_output_whole(tmp_path, capsys):
    """--out over an existing report: a bad input leaves the old file as it was (atomic writes)."""
    out = tmp_path / "report.json"
    out.write_text("previous report\n")
    rc, _, _ = cli(capsys, "explain", str(Path(__file__).parent / "corpus" / "json" / "truncated.json"),
                   "--out", str(out))
    assert rc == 2 and out.read_text() == "previous report\n" and [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("entry", SPARQL, ids=ids(SPARQL))
def test_sparql_query_file(entry, tmp_path, capsys):
    path = materialise(entry, tmp_path)
    rc, stdout, stderr = cli(capsys, "query", str(path))
    # a query's own problem (syntax, refusal) is about its text, not a place in a patient file: where = the text
    check_fatal(entry, rc, stdout, stderr, where="")


def omop_directory(entry: dict, tmp_path: Path) -> Path:
    """A copy of examples/omop with the entry's edits: None deletes a table, "+text" appends, text replaces."""
    folder = tmp_path / Path(entry["file"]).name
    if entry["edits"] == "absent":
        return folder
    shutil.copytree(ROOT / "examples" / "omop", folder)
    for table, edit in entry["edits"].items():
        if edit is None:
            (folder / table).unlink()
        elif edit == "+@latin1":
            with open(folder / table, "ab") as handle:
                handle.write("9009,101,2000000001,2024-05-01,,0,,5,,2000000101,,,2276-4,\u00b5g/L,5\n".encode("latin-1"))
        elif edit.startswith("+"):
            with open(folder / table, "a", encoding="utf-8") as handle:
                handle.write(edit[1:])
        else:
            (folder / table).write_text(edit, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def omop_baseline(tmp_path_factory) -> dict:
    """The summary of the unedited example cohort (the partly valid entries add rows to it)."""
    folder = tmp_path_factory.mktemp("omop")
    rc = main(["screen", str(ROOT / "examples" / "omop"), "--out", str(folder / "o.parquet"),
               "--summary", str(folder / "s.json")])
    assert rc == 0
    return json.loads((folder / "s.json").read_text())


def screened(entry: dict, source: Path, tmp_path: Path, capsys) -> dict | None:
    """``mas-kg screen`` on ``source``: a refusal checked (None), or the summary of a partly valid cohort
    whose rows are all accounted for and whose expected reasons were warned of."""
    out, summary = tmp_path / "out" / "screen.parquet", tmp_path / "out" / "summary.json"
    out.parent.mkdir()
    rc, stdout, stderr = cli(capsys, "screen", str(source), "--out", str(out), "--summary", str(summary))
    if entry["expect"] == 2:
        check_fatal(entry, rc, stdout, stderr, where=str(source))
        assert not any(out.parent.iterdir()), "no output file, not even a temporary one"
        return None
    assert rc == 0 and "Traceback" not in stderr, stderr
    result = json.loads(summary.read_text())
    assert result["input_rows"] == result["used_rows"] + sum(result["rejected"].values()), result  # nothing lost
    for reason in entry["reasons"]:
        assert any(reason in line for line in stderr.splitlines()), stderr
    return result


@pytest.mark.parametrize("entry", OMOP, ids=ids(OMOP))
def test_omop_directory(entry, tmp_path, capsys, omop_baseline):
    result = screened(entry, omop_directory(entry, tmp_path), tmp_path, capsys)
    if result is not None:
        rejected = sum(result["rejected"].values())
        assert rejected - sum(omop_baseline["rejected"].values()) == entry["added_rejected"], result
        assert result["input_rows"] - omop_baseline["input_rows"] == entry["added_rejected"], result


@pytest.mark.parametrize("entry", SCREEN, ids=[e["file"] for e in MANIFEST if e["reader"] == "screen"])
def test_screen_long_csv(entry, tmp_path, capsys):
    """The cohort reader (DuckDB) on the corpus's long CSV files: the same refusals, row-level rejections."""
    source = materialise(entry, tmp_path) if "generate" in entry else Path(__file__).parent / "corpus" / entry["input"]
    result = screened(entry, source, tmp_path, capsys)
    if result is not None:
        assert sum(result["rejected"].values()) == entry["added_rejected"], result


# A sample of each reader, run as a user runs it: (corpus file, expected exit status).
AS_A_USER = ["json/truncated.json", "json/age-negative.json", "json/unknown-code.json", "csv/too-few-fields.csv",
             "csv/two-patients-interleaved.csv", "fhir/no-entries.json", "fhir/unknown-loinc.json",
             "sparql/insert.rq", "sparql/syntax-error.rq"]


@pytest.mark.slow  # subprocesses
def test_as_a_user_runs_it(tmp_path):
    """Real subprocesses (two at a time): exit status, one line, no traceback, no output file on failure."""
    entries = {e["file"]: e for e in MANIFEST}

    def run(name: str):
        entry, path = entries[name], Path(__file__).parent / "corpus" / name
        out = tmp_path / (name.replace("/", "_") + ".out")
        args = (["query", str(path)] if entry["reader"] == "sparql" else ["explain", str(path), "--out", str(out)])
        return entry, path, out, run_cli(*args)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, AS_A_USER))
    for entry, path, out, done in results:
        if entry["expect"] == 2:
            check_fatal(entry, done.returncode, done.stdout, done.stderr,
                        where="" if entry["reader"] == "sparql" else str(path))
            assert not out.exists()
        else:
            check_partial(entry, done.returncode, done.stdout, done.stderr, out, where=str(path))
    folder = omop_directory(entries["omop/no-person"], tmp_path)
    done = run_cli("screen", str(folder), "--out", str(tmp_path / "s.parquet"))
    check_fatal(entries["omop/no-person"], done.returncode, done.stdout, done.stderr, where=str(folder))
    assert not (tmp_path / "s.parquet").exists()
