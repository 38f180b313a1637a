from __future__ import annotations

from pathlib import Path

import pytest

import kg

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "patients"


@pytest.fixture(scope="session")
def engine() -> kg.Engine:
    return kg.Engine()


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
