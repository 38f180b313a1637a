"""The engine against owlready2 + HermiT on the same patients: time per patient and the ratio.

Run: python bench/hermit_vs_engine.py [N] [REPEATS] [INDIVIDUALS_BATCH]
(defaults 200, 3, 8).  N seeded patients, lab values clustered around the
criteria's cut-offs in mixed units, censored and missing values, findings,
ages and conditions.  Measured in the same run, interleaved and repeated
(medians; the machine is noisy):

- the engine's criteria evaluation (all sets; observations in force,
  Context, evaluate_set), and its full ``explain`` (findings, criteria,
  probabilities, causal explanations), per patient;
- kg.owl + HermiT on the whole batch in one reasoner call (patients as record
  classes), per patient; one patient alone (as an individual); and a small
  batch as individuals, where HermiT's realisation grows quadratically.

Every HermiT call includes what it costs to use it: encoding the patients,
owlready2 loading the graph into a fresh World, starting Java, HermiT, and
reading the entailments back.  One-off costs (loading the knowledge base,
generating the OWL classes) are printed separately.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kg  # noqa: E402
from kg.criteria import Context, evaluate_set  # noqa: E402
from kg.findings import evaluation_time, select_at  # noqa: E402
from kg.owl import build_model, classify  # noqa: E402
from kg.patient import read_patient  # noqa: E402
from kg.units import UnitError, convert, normalise_unit  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
INDIVIDUALS_BATCH = int(sys.argv[3]) if len(sys.argv) > 3 else 8

UNITS = {"ferritin": ["ng/mL", "ug/L", "pmol/L"], "hemoglobin": ["g/L", "g/dL", "mmol/L"],
         "platelets": ["10*9/L", "/uL", "K/uL"], "neutrophils": ["10*9/L", "/uL"], "leukocytes": ["10*9/L", "/uL"],
         "triglycerides": ["mg/dL", "mmol/L"], "fibrinogen": ["g/L", "mg/dL", "umol/L"], "ast": ["U/L", "ukat/L"],
         "ldh": ["U/L", "ukat/L"], "d-dimer": ["mg/L", "ng/mL"], "scd25": ["U/mL"], "albumin": ["g/dL", "g/L"],
         "pt-prolongation": ["s"], "temperature": ["Cel", "[degF]"]}
FINDINGS = ["fever", "splenomegaly", "hepatomegaly", "cns-dysfunction", "hemorrhage", "active-arthritis",
            "nk-activity-low", "proteinuria", "immunosuppression", "hemophagocytosis", "hlh-molecular-diagnosis"]
CONDITIONS = ["sJIA", "SLE", "malignancy", "sepsis", "infection", "AOSD"]


def cut_offs(kb) -> dict[str, list[tuple[Fraction, str]]]:
    """The cut-offs the criteria data hold, per lab short name, in their published units."""
    out: dict[str, set[tuple[Fraction, str]]] = {}
    for c in kb.criteria:
        for item in c.items.values():
            if item.analyte:
                for t in [item.threshold] + [b.threshold for b in item.bands]:
                    if t is not None:
                        out.setdefault(kb.lab_tests[item.analyte].notation, set()).add((t, item.unit))
    return {k: sorted(v) for k, v in out.items()}


def patients(kb, n: int, seed: int = 20240302) -> list[dict]:
    rnd = random.Random(seed)
    cuts = cut_offs(kb)
    out = []
    for index in range(n):
        observations = []
        for code, spellings in UNITS.items():
            if code not in cuts or rnd.random() < 0.25:
                continue
            test = kb.lab_tests[kb.resolve_code(code).id]
            threshold, unit = rnd.choice(cuts[code])
            spelling = rnd.choice(spellings)
            try:
                x = convert(threshold, unit, normalise_unit(spelling), analyte_kind=test.quantity_kind, molar=test.molar)
            except UnitError:
                continue
            value = round(float(x) * rnd.choice([0.5, 0.999, 1, 1, 1.001, 2]), 4)
            obs = {"code": code, "value": float(Decimal(str(value))), "unit": spelling}
            if rnd.random() < 0.1:
                obs["comparator"] = rnd.choice(["<", "<=", ">", ">="])
            observations.append(obs)
        for code in FINDINGS:
            r = rnd.random()
            if r < 0.5:
                continue
            obs = {"code": code, "present": r < 0.8}
            if code == "hemophagocytosis" and rnd.random() < 0.5:
                obs["site"] = rnd.choice(["bone-marrow", "spleen", "liver"])
            if code in ("splenomegaly", "hepatomegaly") and obs["present"] and rnd.random() < 0.5:
                obs["value"], obs["unit"] = rnd.choice([2.9, 3, 3.1, 5]), "cm"
            observations.append(obs)
        age = rnd.choice([None, 0.05, 1.6, 7, 35])
        data = {"id": f"bench-{index:03d}", "observations": observations,
                "conditions": [{"code": c} for c in rnd.sample(CONDITIONS, rnd.choice([0, 1, 1, 2]))]}
        if age is not None:
            data["age_years"] = age
        out.append(data)
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    t0 = time.perf_counter()
    engine = kg.Engine()
    kb = engine.kb
    load_kb = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = build_model(kb)
    load_owl = time.perf_counter() - t0
    batch = [read_patient(p, kb) for p in patients(kb, N)]

    def criteria_only() -> None:
        for p in batch:
            ctx = Context.build(p, kb, select_at(p, evaluation_time(p, None)))
            for c in kb.criteria:
                evaluate_set(c, ctx)

    def explain_all() -> None:
        for p in batch:
            engine.explain(p, window=None)

    samples: dict[str, list[float]] = {"criteria": [], "explain": [], "hermit_batch": [], "hermit_one": []}
    for r in range(REPEATS):  # interleaved, so drifts of the machine hit every measure alike
        samples["criteria"].append(timed(criteria_only) / N)
        samples["hermit_batch"].append(timed(lambda: classify(batch, model, as_individuals=False)) / N)
        samples["explain"].append(timed(explain_all) / N)
        one = batch[r % N]
        samples["hermit_one"].append(timed(lambda: classify([one], model, as_individuals=True)))
    small = batch[:INDIVIDUALS_BATCH]
    individuals = timed(lambda: classify(small, model, as_individuals=True)) / len(small) if small else float("nan")

    med = {k: statistics.median(v) for k, v in samples.items()}
    engine_per_patient = med["criteria"]
    print(f"patients: {N} (seeded; {REPEATS} interleaved repeats, medians); criteria sets: {len(kb.criteria)}")
    print(f"one-off: knowledge base {load_kb:.2f} s, OWL classes generated {load_owl:.2f} s "
          f"({len(model.graph)} triples, {len(model.definitions)} defined classes)")
    print(f"engine, criteria only (baseline):            {engine_per_patient * 1e3:9.3f} ms/patient")
    print(f"engine, full explain:                        {med['explain'] * 1e3:9.3f} ms/patient")
    print(f"HermiT, batch of {N} (record classes):        {med['hermit_batch'] * 1e3:9.1f} ms/patient "
          f"(one call, {med['hermit_batch'] * N:.1f} s)")
    print(f"HermiT, one patient alone (individual):      {med['hermit_one'] * 1e3:9.1f} ms")
    print(f"HermiT, batch of {len(small)} as individuals (once):     {individuals * 1e3:9.1f} ms/patient")
    print("ratios (HermiT time / engine time, per patient):")
    for label, hermit in (("batched", med["hermit_batch"]), ("one patient alone", med["hermit_one"]),
                          (f"batch of {len(small)} individuals", individuals)):
        vs_criteria, vs_explain = hermit / engine_per_patient, hermit / med["explain"]
        verdict = "meets" if vs_criteria >= 1000 else "misses"
        print(f"  {label:28s} {vs_criteria:10.0f}x vs criteria ({verdict} the 1000x target), "
              f"{vs_explain:8.0f}x vs full explain")


if __name__ == "__main__":
    main()
