"""Time every query of the suite on both stores, with the ontology and N synthetic patients loaded.

    python bench/sparql.py [--patients 1000] [--repeat 5] [--rdflib-patients N]

Synthetic patients are the example patients and test scenarios with every lab
value scaled by a random factor (seeded), so that verdicts, candidates and
explanations vary.  Each query runs with its documented example parameters
(a patient parameter names a synthetic patient).  Prints, per query, the
median time on Oxigraph (the default store; target <= 20 ms) and on rdflib,
and their ratio, measured in the same run.  rdflib's engine is pure Python
and can take minutes per query at 1,000 patients: past ``--rdflib-limit``
seconds a query is reported as ``> limit`` (it goes on in a background
thread, so later rdflib figures may be inflated; the queries run in name
order); ``--rdflib-patients`` loads rdflib with fewer patients (the ratio then
compares unlike stores, and says so).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kg  # noqa: E402
from kg.rdf import report_nquads  # noqa: E402
from kg.sparql import load_queries  # noqa: E402
from kg.errors import QueryTimeout  # noqa: E402
from kg.store import open_store  # noqa: E402


def templates() -> list[dict]:
    files = [p for p in sorted((ROOT / "examples" / "patients").glob("*.json")) if p.name != "expected.json"]
    files += sorted((ROOT / "tests" / "scenarios").glob("*.json"))
    out = []
    for path in files:
        data = json.loads(path.read_text())
        out.append(data.get("patient", data))
    return out


def synthetic(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    bases = templates()
    patients = []
    for i in range(n):
        data = copy.deepcopy(bases[i % len(bases)])
        data["id"] = f"syn-{i:04d}"
        for obs in data.get("observations", []):
            if isinstance(obs.get("value"), (int, float)) and "unit" in obs and obs.get("code") != "temperature":
                obs["value"] = round(obs["value"] * rng.uniform(0.6, 1.5), 3)
        patients.append(data)
    return patients


def example_params(query, patient_id: str) -> dict[str, str]:
    params = {}
    for p in query.parameters:
        match = re.search(r"Example: (\S+)", p.text)
        params[p.name] = patient_id if p.name == "patient" else match.group(1)
    return params


def timed(store, text, bindings, repeat: int, budget: float, limit: float | None = None) -> tuple[float, int]:
    """Median seconds over up to ``repeat`` runs (fewer past ``budget``); inf past ``limit`` seconds."""
    times, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            result = store.query(text, bindings=bindings, timeout=limit)
        except QueryTimeout:  # the query goes on in a daemon thread; the process ends soon after
            return math.inf, -1
        times.append(time.perf_counter() - start)
        rows = len(result.rows)
        if sum(times) > budget:
            break
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--rdflib-patients", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rdflib-limit", type=float, default=120.0, metavar="SECONDS",
                        help="give up on an rdflib query after this long (default 120)")
    args = parser.parse_args()
    engine = kg.Engine()
    start = time.perf_counter()
    reports = []
    for data in synthetic(args.patients):
        reports.append(engine.explain(data).data)
    print(f"{len(reports)} synthetic patients evaluated in {time.perf_counter() - start:.1f} s")
    nquads = [report_nquads(r) for r in reports]
    rdflib_n = args.patients if args.rdflib_patients is None else min(args.rdflib_patients, args.patients)
    stores = {}
    for backend, n in (("oxigraph", args.patients), ("rdflib", rdflib_n)):
        start = time.perf_counter()
        store = open_store(backend=backend, kb=engine.kb)
        store.add_nquads("".join(nquads[:n]))
        print(f"{backend}: {len(store):,} quads ({n} patients) loaded in {time.perf_counter() - start:.1f} s")
        stores[backend] = store
    target = reports[min(len(reports) - 1, 7)]["patient"]  # a patient both stores hold
    print(f"\nper-query median of up to {args.repeat} runs; patient parameter = {target}")
    print(f"{'query':28s} {'rows':>6s} {'oxigraph ms':>12s} {'rdflib ms':>12s} {'ratio':>8s}  target")
    slow = []
    for name, query in load_queries().items():
        bindings = query.bind(example_params(query, target))
        ox, rows = timed(stores["oxigraph"], query.text, bindings, args.repeat, budget=10)
        rd, _ = timed(stores["rdflib"], query.text, bindings, args.repeat, budget=30, limit=args.rdflib_limit)
        ok = ox <= 0.020
        slow += [] if ok else [name]
        rd_text = f"{rd * 1000:12.1f}" if rd != math.inf else f"{'> ' + format(args.rdflib_limit * 1000, '.0f'):>12s}"
        ratio = f"{rd / ox:7.0f}x" if rd != math.inf else f"{'> ' + format(args.rdflib_limit / ox, '.0f'):>7s}x"
        print(f"{name:28s} {rows:6d} {ox * 1000:12.2f} {rd_text} {ratio}  {'ok' if ok else 'OVER 20 ms'}", flush=True)
    note = "" if rdflib_n == args.patients else f" (rdflib held {rdflib_n} patients, oxigraph {args.patients})"
    print(f"\n{len(slow)} queries over 20 ms on oxigraph{': ' + ', '.join(slow) if slow else ''}{note}")


if __name__ == "__main__":
    main()
