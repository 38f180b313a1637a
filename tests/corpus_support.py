"""Test helper for the bad-input corpus (tests/corpus/manifest.json): generated inputs and output checks."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))["entries"]
T = "2024-05-01T08:00:00Z"
_PATIENT = ('{"id": "t", "age_years": 7, "observations": [{"code": "ferritin", "value": 12000, "unit": "\u00b5g/L", '
            f'"time": "{T}"}}]}}')
_LARGE = 24 * 1024 * 1024  # "a very large file": big enough to notice, small enough for a fast test


def _huge_integer() -> bytes:
    return ('{"id": "t", "observations": [{"code": "ferritin", "value": 1' + "0" * 5000 + ', "unit": "ng/mL"}]}').encode()


# Inputs not committed (binary or large): made at run time in tmp_path.  None = the file must not exist.
GENERATED = {
    "latin1_json": lambda: _PATIENT.encode("latin-1"),
    "utf16_json": lambda: _PATIENT.encode("utf-16"),
    "nul_json": lambda: _PATIENT.replace('"t"', '"t"\x00').encode(),
    "large_json": lambda: b'{"id": "t", "observations": [' + b" " * _LARGE + b"x]}",
    "huge_integer_json": _huge_integer,
    "latin1_csv": lambda: "patient_id,time,code,value,unit\np1,,ferritin,100,\u00b5g/L\n".encode("latin-1"),
    "nul_csv": lambda: b"patient_id,time,code,value,unit\np1,,ferritin,1\x00,ng/mL\n",
    # millions of blank rows, then a short row: the message must name its line, 4000002
    "large_csv": lambda: b"patient_id,time,code,value,unit\n" + b",,,,\n" * (_LARGE // 6) + b"p1,,x\n",
    "latin1_sparql": lambda: "SELECT * WHERE { ?s ?p 'caf\u00e9' }".encode("latin-1"),
    "latin1_form": lambda: b"query=SELECT%20*%20WHERE%20%7B%7D&note=caf\xe9",
    "absent": lambda: None,
}


def materialise(entry: dict, tmp_path: Path) -> Path:
    """The entry's input file: the committed one, or a generated one in tmp_path."""
    if "generate" not in entry:
        return CORPUS / entry["file"]
    path = tmp_path / Path(entry.get("input", entry["file"])).name
    data = GENERATED[entry["generate"]]()
    if data is not None:
        path.write_bytes(data)
    return path


def ids(entries: list[dict]) -> list[str]:
    return [e["file"] for e in entries]


def check_fatal(entry: dict, rc: int, stdout: str, stderr: str, where: str) -> None:
    """Exit 2, nothing on stdout, one error line naming the problem (and where), one warning per rejected item."""
    assert "Traceback" not in stderr, stderr
    assert rc == 2, (rc, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert lines and lines[-1].startswith("mas-kg: error: "), stderr
    assert all(line.startswith("mas-kg: warning: ") for line in lines[:-1]), stderr
    assert len(lines) - 1 == entry.get("warnings", 0), stderr
    assert entry["message"] in lines[-1], lines[-1]
    assert where in lines[-1], lines[-1]
    assert len(lines[-1]) < 1000, "one short line"


def check_partial(entry: dict, rc: int, stdout: str, stderr: str, out: Path, where: str) -> list[dict]:
    """Exit 0; every observation used or rejected with the expected reason; one warning line per rejection."""
    assert "Traceback" not in stderr, stderr
    assert rc == 0, stderr
    warnings = stderr.splitlines()
    assert len(warnings) == len(entry["rejected"]), stderr
    assert all(line.startswith(f"mas-kg: warning: {where}") for line in warnings), stderr
    text = out.read_text(encoding="utf-8")
    if entry.get("args", [])[:2] == ["--format", "html"]:
        for fragment in entry.get("absent", []):
            assert fragment not in text, f"live markup {fragment!r} in the page"
        return []
    data = json.loads(text)
    reports = data if isinstance(data, list) else [data]
    given = sum(r["observations"]["given"] for r in reports)
    used = sum(r["observations"]["used"] for r in reports)
    for report in reports:  # nothing lost, per patient
        accounting = report["observations"]
        assert accounting["used"] + len(accounting["rejected"]) == accounting["given"], accounting
        assert len(accounting["items"]) == accounting["used"]
        for item in accounting["rejected"]:
            assert isinstance(item["index"], int) and item["reason"], item
    assert (given, used) == (entry["given"], entry["used"])
    got = sorted((r["patient"], x["index"], x["reason"]) for r in reports for x in r["observations"]["rejected"])
    want = sorted(map(tuple, entry["rejected"]))
    assert len(got) == len(want), got
    for (pid, index, reason), (wpid, windex, fragment) in zip(got, want):
        assert (pid, index) == (wpid, windex) and fragment in reason, (got, want)
    return reports
