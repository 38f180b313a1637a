from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kg

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "patients"


@pytest.fixture(scope="session")
def engine() -> kg.Engine:
    return kg.Engine()


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """``mas-kg ARGS`` in a subprocess, as a user runs it (umask 022, so file modes are predictable)."""
    return subprocess.run([sys.executable, "-m", "kg.cli", *args], capture_output=True, text=True, cwd=cwd,
                          preexec_fn=lambda: os.umask(0o022))


def patient(observations, *, conditions=(("sJIA", "confirmed"),), age=7.0, **extra):
    data = {"id": "t", "age_years": age, "conditions": [{"code": c, "status": s} for c, s in conditions],
            "observations": list(observations)}
    data.update(extra)
    return data


def ontology_copy(tmp_path: Path) -> Path:
    """A private copy of the ontology for tests that edit it."""
    import shutil

    copy = tmp_path / "ontology"
    shutil.copytree(ROOT / "ontology", copy)
    return copy


HOSTILE = ('</script><script>window.__xss = "script"</script>', '<img src=x onerror="window.__xss = \'img\'">',
           '<svg onload="window.__xss = \'svg\'"></svg>', '"><iframe srcdoc="<script>parent.__xss=1</script>">',
           '\u2028</script><!--')


def hostile_patient() -> dict:
    """A patient whose id, condition, medication and an observation code are script-injection payloads."""
    return {"id": HOSTILE[0], "age_years": 7.0, "sex": "female",
            "conditions": [{"code": "sJIA", "status": "confirmed"}, {"code": HOSTILE[1], "status": "confirmed"}],
            "medications": [{"code": HOSTILE[2]}],
            "observations": [
                {"code": "ferritin", "value": 12000, "unit": "ng/mL", "time": "2024-05-01T08:00:00Z"},
                {"code": "platelets", "value": 90, "unit": "10*9/L", "time": "2024-05-01T08:00:00Z"},
                {"code": HOSTILE[3], "value": 1, "unit": "g/L", "time": "2024-05-01T08:00:00Z"},
                {"code": "fibrinogen", "value": 1.2, "unit": HOSTILE[4], "time": "2024-05-01T08:00:00Z"}]}


def expected_knowledge_graph(kb) -> tuple[set[str], int]:
    """The explorer's nodes and edge count, computed from the ontology without the view code.

    Nodes: both ends of every causal edge, what each lab test measures and the lab signs it reports, the
    candidate syndromes, and what each sign- or finding-based evidence rule reads.  Edges: one per causal
    edge, one per (test, direction) with a sign, one per effect of such an evidence rule.
    """
    nodes = {e.subject for e in kb.edges} | {e.object for e in kb.edges} | {c.term for c in kb.candidates}
    count = len(kb.edges)
    for test in kb.lab_tests.values():
        for sign in (test.high_sign, test.low_sign):
            if sign:
                nodes |= {test.measures, sign}
                count += 1
    for rule in kb.evidence:
        if rule.analyte and (rule.direction or rule.comparator):
            test = kb.lab_tests[rule.analyte]
            origin = test.low_sign if (rule.direction == "low" or rule.comparator in ("<", "<=")) else test.high_sign
        else:
            origin = rule.finding
        if origin:
            nodes |= {origin} | {e.candidate for e in rule.effects}
            count += len(rule.effects)
    return nodes, count


@pytest.fixture(scope="session")
def spark_backend():
    """One :class:`kg.screen.spark.SparkBackend` (local[2]) for the whole session: Spark starts in seconds, not ms.

    Skipped when pyspark or Java is missing, unless ``MAS_KG_REQUIRE_SPARK=1`` (CI sets it): then it fails.
    """
    import shutil

    required = os.environ.get("MAS_KG_REQUIRE_SPARK") == "1"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("MAS_KG_REQUIRE_SPARK=1 but pyspark is not installed (pip install -e .[test])")
        pytest.skip("pyspark is not installed (pip install -e .[spark])")
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        if required:
            pytest.fail("MAS_KG_REQUIRE_SPARK=1 but there is no java (apt-get install -y default-jre-headless)")
        pytest.skip("Spark needs Java: no java on PATH or in JAVA_HOME")
    from kg.screen.spark import SparkBackend

    backend = SparkBackend()
    yield backend
    backend.close()
