"""Every explanation path is sign-consistent and sourced; every abnormal lab is explained."""

import json

import pytest

from conftest import EXAMPLES

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.json") if p.name != "expected.json")


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_paths_are_sign_consistent_sourced_and_connected(engine, name):
    report = engine.explain(EXAMPLES / name).to_dict()
    for explanation in report["explanations"]:
        wanted = -1 if explanation["direction"] == "low" else 1
        for path in explanation["paths"]:
            steps = path["steps"]
            product = 1
            for step in steps:
                product *= 1 if step["sign"] == "+" else -1
                assert step["sources"], step
            assert product == wanted, (name, explanation["finding"], path["text"])
            assert all(a["to"] == b["from"] for a, b in zip(steps, steps[1:]))
            assert steps[-1]["to"] == explanation["node"]


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_abnormal_lab_has_an_explanation(engine, name):
    report = engine.explain(EXAMPLES / name).to_dict()
    abnormal = {f["code"] for f in report["findings"] if f["kind"] == "lab" and f["interpretation"] in ("high", "low")}
    explained = {e["finding"] for e in report["explanations"]}
    assert abnormal <= explained, abnormal - explained


def test_hand_flagged_abnormal_labs_are_flagged(engine):
    expected = json.loads((EXAMPLES / "expected.json").read_text())
    for name, want in expected.items():
        findings = {f["code"]: f for f in engine.explain(EXAMPLES / name).to_dict()["findings"]}
        for code, direction in want.get("abnormal", {}).items():
            assert findings[code]["interpretation"] == direction, (name, code)


def test_seed_explanations_come_out(engine):
    report = engine.explain(EXAMPLES / "sjia-mas.json").to_dict()
    paths = {e["finding"]: [p["text"] for p in e["paths"]] for e in report["explanations"]}
    assert any("lipoprotein lipase inhibition" in t for t in paths["triglycerides"])
    assert any("consumptive coagulopathy" in t for t in paths["fibrinogen"])
    assert any("hemophagocytosis" in t for t in paths["platelets"])
    assert any("T-cell activation loop" in t for t in paths["scd25"])
    assert any("interferon gamma" in t for t in paths["cxcl9"])


def test_ferritin_iron_trap_route_exists(engine):
    from kg.causal import Target

    paths = engine.graph.explain(Target("ferritin", "mkg:Ferritin", 1, "high"), context=set(), others=[], limit=12)
    texts = [p.to_dict(engine.kb)["text"] for p in paths]
    assert any("hepcidin" in t and "ferroportin" in t and "iron trap" in t for t in texts)
    assert any("heme iron release" in t for t in texts)


def test_low_esr_is_explained_through_fibrinogen_and_stokes(engine):
    from kg.causal import Target

    paths = engine.graph.explain(Target("esr", "mkg:ErythrocyteSedimentation", -1, "low"), context=set(), others=[])
    assert paths and all("rouleaux formation" in p.to_dict(engine.kb)["text"] for p in paths[:1])
