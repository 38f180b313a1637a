"""The clinical scenarios of tests/scenarios/: each names its expected top candidate,
key causal chains, alerts that must fire and alerts that must stay quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg.check_rules import CATEGORIES

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.json"))


def test_there_are_at_least_thirty_scenarios_covering_every_category():
    assert len(SCENARIOS) >= 30
    tops = {json.loads(p.read_text())["expect"]["top"] for p in SCENARIOS}
    assert tops == set(CATEGORIES)


@pytest.fixture(scope="module")
def reports(engine):
    out = {}
    for path in SCENARIOS:
        scenario = json.loads(path.read_text())
        out[path.name] = (scenario, engine.explain(scenario["patient"], at=scenario.get("at")).to_dict())
    return out


@pytest.mark.parametrize("name", [p.name for p in SCENARIOS])
def test_scenario(reports, name):
    scenario, report = reports[name]
    expect = scenario["expect"]
    assert not report["observations"]["rejected"], report["observations"]["rejected"]
    ranking = [(c["category"], c["score"]) for c in report["candidates"]]
    assert report["candidates"][0]["category"] == expect["top"], ranking
    top = report["candidates"][0]
    assert top["supporting"], "the leading candidate must say why"
    patient = scenario["patient"]
    has_context = bool(patient.get("conditions")) or any(
        o.get("code") == "hlh-molecular-diagnosis" and o.get("present", True) and o.get("gene")
        for o in patient["observations"])
    for item in expect.get("explanations", []):
        entry = next((e for e in report["explanations"] if e["finding"] == item["finding"]), None)
        assert entry is not None, f"{item['finding']} is not explained"
        assert entry["direction"] == item["direction"]
        matching = [p for p in entry["paths"]
                    if set(item["through"]) <= {s["from"] for s in p["steps"]} | {s["to"] for s in p["steps"]}]
        assert matching, f"{item['finding']}: no path through {item['through']}: {[p['text'] for p in entry['paths']]}"
        if has_context:  # the chain must start from the patient's own condition or gene
            assert any(p["in_context"] for p in matching), [p["text"] for p in matching]
    fired = {a["code"] for a in report["alerts"]}
    assert set(expect.get("alerts", [])) <= fired, fired
    assert not set(expect.get("quiet", [])) & fired, fired
    statuses = {c["id"]: c["status"] for c in report["criteria"]}
    for criterion, status in expect.get("criteria", {}).items():
        assert statuses[criterion] == status, criterion


def test_every_path_is_sign_consistent_and_sourced(reports):
    for name, (_, report) in reports.items():
        for entry in report["explanations"]:
            wanted = -1 if entry["direction"] == "low" else 1
            for path in entry["paths"]:
                sign = 1
                for step in path["steps"]:
                    assert step["sources"], f"{name}: unsourced step {step}"
                    sign *= 1 if step["sign"] == "+" else -1
                assert sign == wanted, f"{name}: {path['text']}"
                assert path["steps"][-1]["to"] == entry["node"]
                assert all(a["to"] == b["from"] for a, b in zip(path["steps"], path["steps"][1:]))


def test_every_candidate_reason_is_traceable(reports):
    """Each evidence item names its ontology rule and a source; signature items carry their causal path."""
    for name, (_, report) in reports.items():
        for candidate in report["candidates"]:
            total = 0
            for evidence in candidate["evidence"]:
                assert evidence["rule"] and evidence["sources"], (name, evidence)
                if evidence["kind"] == "signature":
                    assert evidence["path"], (name, evidence)
                total += evidence["points"]
            assert total == pytest.approx(candidate["score"])
