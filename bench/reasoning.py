"""What the causal reasoning costs: a full report against criteria evaluation alone.

Run: python bench/reasoning.py [ROUNDS]
Both are measured in this run on the 32 scenarios of tests/scenarios/ (the
machine is shared and noisy, so the ratio is what to read): the baseline
evaluates every criteria set; the full report adds explanations (the
parsimonious cover), alerts, trends, candidates and therapies.  The engine
caches path enumeration per (finding node, sign, the patient's own roots), so
the first pass over fresh patients is reported too, beside the warm median.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import kg
from kg.criteria import Context, evaluate_set
from kg.findings import evaluation_time, select_at

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
engine = kg.Engine()
patients = [engine.read(json.loads(p.read_text())["patient"])
            for p in sorted((Path(__file__).parent.parent / "tests" / "scenarios").glob("*.json"))]


def criteria_only() -> None:
    for patient in patients:
        when = evaluation_time(patient)
        ctx = Context.build(patient, engine.kb, select_at(patient, when, window=kg.engine.DEFAULT_WINDOW))
        for criteria_set in engine.kb.criteria:
            evaluate_set(criteria_set, ctx)


def full_report() -> None:
    for patient in patients:
        engine.explain(patient)


def median(fn) -> float:
    fn()  # warm caches
    runs = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) / len(patients)


start = time.perf_counter()
full_report()  # first pass: the path cache is empty
first = (time.perf_counter() - start) / len(patients)
baseline, full = median(criteria_only), median(full_report)
print(f"criteria only (baseline): {baseline * 1000:.2f} ms/patient")
print(f"full report, first pass:  {first * 1000:.2f} ms/patient  (ratio {first / baseline:.1f}x)")
print(f"full report, warm:        {full * 1000:.2f} ms/patient  (ratio {full / baseline:.1f}x)")
