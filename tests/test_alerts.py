"""Paradox and trend alerts: each fires where it should and stays quiet where it should not."""

from __future__ import annotations

import math

import pytest

from conftest import patient


def lab(code, value, unit, day, hour=8, **extra):
    return {"code": code, "value": value, "unit": unit, "time": f"2024-03-{day:02d}T{hour:02d}:00:00Z", **extra}


def alerts(engine, observations, **kwargs):
    report = engine.explain(patient(observations, **kwargs)).to_dict()
    return {a["code"]: a for a in report["alerts"]}


# --- ESR/CRP discordance ----------------------------------------------------

def test_low_esr_with_high_crp_fires(engine):
    fired = alerts(engine, [lab("crp", 120, "mg/L", 5), lab("esr", 8, "mm/h", 5)])
    alert = fired["esr-crp-discordance"]
    assert alert["severity"] == "warning" and "CRP" in alert["message"] and "ESR" in alert["message"]
    assert {e["code"] for e in alert["evidence"]} == {"crp", "esr"}
    assert alert["sources"]


@pytest.mark.parametrize("observations", [
    [lab("crp", 120, "mg/L", 5), lab("esr", 80, "mm/h", 5)],  # a flare: both high
    [lab("crp", 3, "mg/L", 5), lab("esr", 8, "mm/h", 5)],  # nothing inflamed
    [lab("crp", 120, "mg/L", 5)],  # ESR not measured: never assumed normal
    [lab("crp", 120, "mg/L", 5), lab("esr", 8, "mm/h", 1)],  # the ESR is older than the 72 h window
])
def test_discordance_stays_quiet(engine, observations):
    assert "esr-crp-discordance" not in alerts(engine, observations)


# --- falling platelets / fibrinogen, rising ferritin ------------------------

def test_a_fall_of_exactly_thirty_percent_fires(engine):
    fired = alerts(engine, [lab("platelets", 500, "10*9/L", 1), lab("platelets", 350, "10*9/L", 3)])
    alert = fired["falling-platelets"]
    assert alert["evidence"][0]["from"]["value"] == 500 and alert["evidence"][0]["to"]["value"] == 350
    assert alert["evidence"][0]["relative"] == pytest.approx(-0.3)
    assert "30%" in alert["message"] and "2024-03-01T08:00:00Z" in alert["message"]


def test_the_fall_is_measured_from_the_peak_in_the_look_back(engine):
    # 400 -> 600 (peak) -> 410: a 32% fall from the peak, though only 2.5% below the first value
    fired = alerts(engine, [lab("platelets", 400, "10*9/L", 1), lab("platelets", 600, "10*9/L", 3),
                            lab("platelets", 410, "10*9/L", 5)])
    assert fired["falling-platelets"]["evidence"][0]["from"]["value"] == 600


@pytest.mark.parametrize("observations", [
    [lab("platelets", 500, "10*9/L", 1), lab("platelets", 351, "10*9/L", 3)],  # 29.8%: below the setting
    [lab("platelets", 500, "10*9/L", 1), lab("platelets", 200, "10*9/L", 9)],  # the peak is 8 days old
    [lab("platelets", 200, "10*9/L", 3)],  # a single value is no trend
    [lab("platelets", 200, "10*9/L", 1), lab("platelets", 500, "10*9/L", 3)],  # rising
    [lab("platelets", 500, "10*9/L", 1), lab("platelets", 100, "10*9/L", 3, comparator="<")],  # censored
])
def test_falling_platelets_stays_quiet(engine, observations):
    assert "falling-platelets" not in alerts(engine, observations)


def test_a_stale_latest_value_raises_no_trend(engine):
    """The latest platelet count is 5 days before the evaluation time: outside the window, no alert."""
    observations = [lab("platelets", 500, "10*9/L", 1), lab("platelets", 200, "10*9/L", 2),
                    lab("ferritin", 900, "ng/mL", 7)]
    assert "falling-platelets" not in alerts(engine, observations)


def test_falling_fibrinogen_in_mixed_units(engine):
    fired = alerts(engine, [lab("fibrinogen", 5.0, "g/L", 1), lab("fibrinogen", 300, "mg/dL", 2)])
    assert fired["falling-fibrinogen"]["evidence"][0]["relative"] == pytest.approx(-0.4)


def test_rising_ferritin_at_and_below_the_setting(engine):
    assert "rising-ferritin" in alerts(engine, [lab("ferritin", 1000, "ng/mL", 1), lab("ferritin", 1500, "ng/mL", 2)])
    assert "rising-ferritin" not in alerts(engine, [lab("ferritin", 1000, "ng/mL", 1), lab("ferritin", 1499, "ng/mL", 2)])


# --- flare -> MAS transition --------------------------------------------------

FLARE_TO_MAS = [
    lab("platelets", 620, "10*9/L", 1), lab("fibrinogen", 6.5, "g/L", 1), lab("ferritin", 900, "ng/mL", 1),
    lab("platelets", 380, "10*9/L", 3), lab("fibrinogen", 3.9, "g/L", 3), lab("ferritin", 4200, "ng/mL", 3),
]


def test_flare_turning_into_mas_fires_with_its_evidence(engine):
    fired = alerts(engine, FLARE_TO_MAS)
    alert = fired["flare-to-mas-transition"]
    assert {"falling-platelets", "falling-fibrinogen", "rising-ferritin"} <= set(fired)
    earlier = [e for e in alert["evidence"] if e.get("interpretation") == "high"]
    assert {e["code"] for e in earlier} == {"platelets", "fibrinogen"}
    assert {e["alert"] for e in alert["evidence"] if "alert" in e} == {"falling-platelets", "falling-fibrinogen",
                                                                       "rising-ferritin"}


def test_no_transition_without_an_earlier_flare(engine):
    """Counts that were never high fall with rising ferritin: alarming, but not a flare turning into MAS."""
    observations = [lab("platelets", 300, "10*9/L", 1), lab("fibrinogen", 3.5, "g/L", 1), lab("ferritin", 900, "ng/mL", 1),
                    lab("platelets", 150, "10*9/L", 3), lab("fibrinogen", 2.0, "g/L", 3), lab("ferritin", 4200, "ng/mL", 3)]
    fired = alerts(engine, observations)
    assert "falling-platelets" in fired and "flare-to-mas-transition" not in fired


def test_no_transition_while_ferritin_is_steady(engine):
    observations = FLARE_TO_MAS[:5] + [lab("ferritin", 950, "ng/mL", 3)]
    assert "flare-to-mas-transition" not in alerts(engine, observations)


def test_a_resolving_flare_is_not_a_transition(engine):
    """Platelets and fibrinogen come down from a flare, ferritin falls too: recovery, no alarm."""
    observations = FLARE_TO_MAS[:3] + [lab("platelets", 380, "10*9/L", 3), lab("fibrinogen", 3.9, "g/L", 3),
                                       lab("ferritin", 500, "ng/mL", 3)]
    fired = alerts(engine, observations)
    assert "flare-to-mas-transition" not in fired and "rising-ferritin" not in fired


# --- response to therapy -------------------------------------------------------

def test_consumption_resolving_after_cytokine_blockade(engine):
    observations = [lab("fibrinogen", 1.0, "g/L", 1), lab("d-dimer", 12, "mg/L", 1),
                    lab("fibrinogen", 1.6, "g/L", 3), lab("d-dimer", 4, "mg/L", 3)]
    fired = alerts(engine, observations, medications=[{"code": "anakinra", "start": "2024-03-01T12:00:00Z"}])
    alert = fired["consumption-resolving"]
    assert alert["severity"] == "info"
    assert [m["therapy"] for m in alert["therapies_started"]] == ["mkg:Anakinra"]
    assert "anakinra from 2024-03-01T12:00:00Z" in alert["message"]
    assert {e["code"]: e["direction"] for e in alert["evidence"]} == {"fibrinogen": "rising", "d-dimer": "falling"}


def test_consumption_still_active_is_not_resolving(engine):
    observations = [lab("fibrinogen", 1.0, "g/L", 1), lab("d-dimer", 4, "mg/L", 1),
                    lab("fibrinogen", 1.6, "g/L", 3), lab("d-dimer", 12, "mg/L", 3)]
    assert "consumption-resolving" not in alerts(engine, observations)


def test_alert_settings_are_read_from_the_ontology(engine):
    rules = {r.code: r for r in engine.kb.alerts}
    assert {"esr-crp-discordance", "falling-platelets", "falling-fibrinogen", "rising-ferritin",
            "flare-to-mas-transition", "consumption-resolving"} <= set(rules)
    assert all(r.setting_note for r in rules.values() if r.kind != "discordance")


def test_the_discordance_alert_explains_why_the_esr_is_not_high(engine):
    """ESR's range starts at 0, so it is never flagged low; the alert carries the v ∝ r² chain instead."""
    fired = alerts(engine, [lab("crp", 120, "mg/L", 5), lab("esr", 8, "mm/h", 5), lab("fibrinogen", 1.1, "g/L", 5)])
    chains = fired["esr-crp-discordance"]["explanation"]
    assert chains and all(c["finding"] == "esr" for c in chains)
    nodes = [[s["to"] for s in c["steps"]] for c in chains]
    assert any(n[-4:] == ["mkg:Fibrinogen", "mkg:RouleauxFormation", "mkg:SettlingRadius",
                          "mkg:ErythrocyteSedimentation"] for n in nodes)
    for chain in chains:
        signs = [1 if s["sign"] == "+" else -1 for s in chain["steps"]]
        assert math.prod(signs) == -1 and all(s["sources"] for s in chain["steps"])
