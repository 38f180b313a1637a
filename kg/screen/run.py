"""``screen()``: read a cohort, evaluate every criteria set at every time point, write one row each.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "c.csv").write_text("patient_id,time,code,value,unit\\n"
...     "p1,,sJIA,confirmed,\\np1,2024-03-02,ferritin,12000,ng/mL\\np1,2024-03-02,platelets,95,10*9/L\\n"
...     "p1,2024-03-02,ast,300,U/L\\np1,2024-03-02,temperature,39.5,Cel\\n")
>>> summary = screen(folder / "c.csv", out=folder / "hits.csv")
>>> summary.patients, summary.evaluation_rows, summary.hits["mas2016"]
(1, 1, 1)
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence, TextIO

from ..errors import InputError
from ..knowledge import CriteriaSet, KnowledgeBase, load_knowledge
from ..patient import latest_plausible_time
from .backend import Backend, DuckDBBackend, table_format
from .compiler import CriteriaCompiler, FindingKey, SlotPlan
from .dictionary import CODE_COLUMNS, SITE_COLUMNS, code_row, condition_row, site_row, unit_rows
from .pipeline import LONG_COLUMNS, observations_view, result_query, source_view

__all__ = ["screen", "ScreenSummary", "DEFAULT_WINDOW", "open_backend"]

DEFAULT_WINDOW = timedelta(hours=72)  # as kg.Engine.explain


@dataclass
class ScreenSummary:
    """What a screen read, rejected and found."""

    patients: int = 0
    input_rows: int = 0
    used_rows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> rows
    ignored: int = 0  # conditions neither confirmed nor suspected (noted, not observations: kg.patient)
    evaluation_rows: int = 0
    hits: dict[str, int] = field(default_factory=dict)  # criterion id -> rows met
    patients_hit: dict[str, int] = field(default_factory=dict)  # criterion id -> patients met at some time
    flagged_patients: int = 0
    seconds: float = 0.0
    engine: str = "duckdb"
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def to_text(self) -> str:
        lines = [f"screened {self.patients} patients: {self.input_rows} rows ({self.used_rows} used, "
                 f"{sum(self.rejected.values())} rejected, {self.ignored} conditions ignored) -> "
                 f"{self.evaluation_rows} evaluation rows in "
                 f"{self.output} ({self.engine}, {self.seconds:.1f} s)"]
        width = max((len(k) for k in self.hits), default=0)
        for cid, rows in self.hits.items():
            lines.append(f"  {cid.ljust(width)}  met in {rows} rows, {self.patients_hit.get(cid, 0)} patients")
        if self.rejected:
            lines.append("rejected rows:")
            for reason, count in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {count:>8}  {reason}")
        return "\n".join(lines)


def open_backend(engine: str | Backend) -> tuple[Backend, bool]:
    """(backend, whether the caller owns and must close it) for ``duckdb``, ``spark`` or an instance."""
    if isinstance(engine, Backend):
        return engine, False
    if engine == "duckdb":
        return DuckDBBackend(), True
    if engine == "spark":
        try:
            from .spark import SparkBackend
        except ImportError as error:
            raise InputError(f"--engine spark needs pyspark (pip install 'mas-kg[spark]'): {error}") from None
        return SparkBackend(), True
    raise InputError(f"unknown engine {engine!r} (duckdb or spark)")


def screen(source: str | Path, *, out: str | Path, engine: str | Backend = "duckdb",
           window: timedelta | None = DEFAULT_WINDOW, flagged: str | Path | None = None,
           criteria: Sequence[str] | None = None, progress: bool | TextIO = False,
           kb: KnowledgeBase | None = None) -> ScreenSummary:
    """Screen a cohort (long CSV/Parquet, or a directory of OMOP CDM tables) into ``out`` (.csv or .parquet).

    ``window``: how far back a timed value still counts (None: no limit), as in
    :meth:`kg.Engine.explain`.  ``flagged``: also write the long-format rows of
    every patient meeting some criterion at some time, for ``mas-kg explain``.
    ``criteria``: the ids of the criteria sets to evaluate, in this order (default: every set).
    ``progress``: True (or a stream) draws a progress bar on stderr.
    """
    started = time.perf_counter()
    kb = kb or load_knowledge()
    table_format(out)  # refuse a bad output name before any work
    if flagged is not None and table_format(flagged) != "csv":
        raise InputError("the flagged patients are written as long CSV: the name must end in .csv", where=str(flagged))
    if window is not None and window < timedelta(0):
        raise InputError("the look-back window must not be negative")
    sets = _selected(kb, criteria)
    backend, owned = open_backend(engine)
    try:
        _register_input(backend, Path(source))
        plan = SlotPlan.from_criteria(kb, sets)
        populations = list(dict.fromkeys(p for c in sets for p in c.population))
        width, keys = _dictionaries(backend, kb, plan, populations, sets)
        observations_view(backend, plan, width, latest_us=_epoch_us(latest_plausible_time()))
        compiler = CriteriaCompiler(kb, plan, keys, populations, backend.dialect, sets=sets)
        query = result_query(backend, compiler, plan, keys, populations, window=window)
        with _Progress(backend, progress):
            written = backend.write(query, out)
        summary = _summarise(backend, sets, out, flagged)
        summary.evaluation_rows, summary.engine, summary.output = written, backend.name, str(out)
        summary.seconds = time.perf_counter() - started
        return summary
    finally:
        if owned:
            backend.close()


def _register_input(backend: Backend, source: Path) -> None:
    """The input as view ``long_input`` with the long-format columns."""
    if source.is_dir() and _is_omop(source):
        from .omop import omop_long_query, register_omop

        views = register_omop(backend, source)  # checks the tables and their columns, NULL for optional ones
        backend.create_view("long_input", omop_long_query(backend.dialect, views))
        columns = list(LONG_COLUMNS)
    else:
        columns = backend.register_file("long_input", source)
    source_view(backend, "long_input", columns, where=str(source))
    if not backend.fetch("SELECT count(*) FROM (SELECT row_no FROM src LIMIT 1) t")[0][0]:
        raise InputError("no rows: the cohort is empty", where=str(source))


def _epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def _is_omop(directory: Path) -> bool:
    return any(p.stem.lower() == "measurement" for p in directory.iterdir())


def _selected(kb: KnowledgeBase, criteria: Sequence[str] | None) -> list[CriteriaSet]:
    """The criteria sets to screen: every one, or those named (each known, none twice)."""
    if criteria is None:
        return list(kb.criteria)
    known = {c.id: c for c in kb.criteria}
    names = [name.strip() for name in (criteria.split(",") if isinstance(criteria, str) else criteria)]
    for name in names:
        if name not in known:
            raise InputError(f"unknown criteria set {name!r} (known: {', '.join(known)})")
    if not names or len(set(names)) != len(names):
        raise InputError("name each criteria set once, at least one")
    return [known[name] for name in names]


def _dictionaries(backend: Backend, kb: KnowledgeBase, plan: SlotPlan, populations: list[str],
                  sets: list[CriteriaSet]) -> tuple[int, list[FindingKey]]:
    """Resolve every distinct spelling once; register dict_code, dict_unit, dict_site, dict_cond, dict_fkey.

    Returns the number of slot columns and the (finding, site, gene) keys the criteria read.
    """
    combos = backend.fetch("SELECT code_key, min(code), unit, lower(site), lower(agent), upper(gene) FROM src "
                           "WHERE code_key IS NOT NULL GROUP BY code_key, unit, lower(site), lower(agent), upper(gene)")
    codes = {key: code_row(code, kb, plan) for key, code, *_ in combos}
    backend.register_rows("dict_code", CODE_COLUMNS, list(codes.values()))
    pairs = sorted({(key, unit or "") for key, _, unit, *_ in combos if codes[key][1] in ("lab", "finding")})
    units = unit_rows(pairs, kb, plan)
    backend.register_rows("dict_unit", units.columns, units.rows)
    sites = {site: site_row(site, kb) for *_, site, _, _ in combos if site}
    backend.register_rows("dict_site", SITE_COLUMNS, list(sites.values()))
    conditions = sorted({(key, agent or "") for key, _, _, _, agent, _ in combos if codes[key][1] == "condition"})
    backend.register_rows("dict_cond", [("code_key", "VARCHAR"), ("agent_key", "VARCHAR"), ("term", "VARCHAR")] +
                          [(f"pop{i}", "BOOLEAN") for i in range(len(populations))],
                          [condition_row(key, agent or None, kb, populations) for key, agent in conditions])
    read = {f for c in sets for i in c.items.values() for f in (i.finding, i.absent_finding) if f}
    spellings = {}  # (code_key, site_key, gene_key) -> (finding, site term, gene)
    for key, _, _, site, _, gene in combos:
        term = codes[key][2]
        if codes[key][1] == "finding" and term in read and (not site or sites[site][1]):
            spellings[(key, site or "", gene or "")] = (term, sites[site][1] if site else None, gene or None)
    index = {k: i for i, k in enumerate(sorted(set(spellings.values()), key=lambda k: (k[0], k[1] or "", k[2] or "")))}
    keys = [FindingKey(i, *k) for k, i in index.items()]
    backend.register_rows("dict_fkey", [("code_key", "VARCHAR"), ("site_key", "VARCHAR"), ("gene_key", "VARCHAR"),
                                        ("fk", "BIGINT")],
                          [(*spelling, index[k]) for spelling, k in spellings.items()])
    return max((len(plan.of_test(t)) for t in plan.tests), default=0), keys


def _summarise(backend: Backend, sets: list[CriteriaSet], out: str | Path, flagged: str | Path | None) -> ScreenSummary:
    summary = ScreenSummary()
    counts = backend.fetch("SELECT count(*), count(DISTINCT pid), count(*) FILTER (WHERE reason IS NULL) FROM obs")[0]
    summary.input_rows, summary.patients, summary.used_rows = (int(x) for x in counts)
    summary.ignored = int(backend.fetch("SELECT count(*) FROM obs WHERE kind = 'ignored'")[0][0])
    summary.rejected = {reason: int(n) for reason, n in
                        backend.fetch("SELECT reason, count(*) FROM obs WHERE reason IS NOT NULL GROUP BY reason")}
    backend.register_file("screen_out", out)
    met = ", ".join(f"count(*) FILTER (WHERE {c.id}_status = 'met'), "
                    f"count(DISTINCT CASE WHEN {c.id}_status = 'met' THEN patient_id END)" for c in sets)
    row = backend.fetch(f"SELECT {met} FROM screen_out")[0]
    for i, c in enumerate(sets):
        summary.hits[c.id], summary.patients_hit[c.id] = int(row[2 * i]), int(row[2 * i + 1])
    if flagged is not None:
        any_met = " OR ".join(f"{c.id}_status = 'met'" for c in sets)
        backend.create_view("flagged_ids", f"SELECT DISTINCT patient_id FROM screen_out WHERE {any_met}")
        summary.flagged_patients = int(backend.fetch("SELECT count(*) FROM flagged_ids")[0][0])
        columns = ", ".join(f"{'pid' if c == 'patient_id' else _source_name(c)} AS {c}" for c in LONG_COLUMNS)
        backend.write(f"SELECT {columns} FROM src WHERE pid IN (SELECT patient_id FROM flagged_ids) "
                      f"ORDER BY row_no", flagged)
    return summary


def _source_name(column: str) -> str:
    return {"time": "time_text", "value": "val", "comparator": "cmp_col"}.get(column, column)


class _Progress:
    """A progress bar on a terminal while the engine works; nothing otherwise."""

    def __init__(self, backend: Backend, progress: bool | TextIO) -> None:
        self.backend = backend
        self.stream: TextIO | None = (sys.stderr if progress is True else progress) or None  # type: ignore[assignment]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "_Progress":
        if self.stream is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(0.25):
            fraction = self.backend.progress()
            shown = 0.0 if fraction is None else fraction
            bar = "#" * int(shown * 30)
            self.stream.write(f"\rscreening [{bar:<30}] {shown:4.0%} {time.monotonic() - started:6.1f} s")  # type: ignore[union-attr]
            self.stream.flush()  # type: ignore[union-attr]

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r" + " " * 60 + "\r")  # type: ignore[union-attr]
            self.stream.flush()  # type: ignore[union-attr]
