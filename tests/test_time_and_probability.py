"""Evaluation time, the look-back window, history for trends, pre-test and post-test probability."""

import json
import subprocess
import sys
from datetime import timedelta
from fractions import Fraction

import pytest

import kg
from conftest import patient
from kg.probability import interpolate, post_test
from test_scores import finding, lab


def timed(code, value, unit, time):
    return {"code": code, "value": value, "unit": unit, "time": time}


SERIES = [
    timed("ferritin", 500, "ng/mL", "2024-03-01T08:00:00Z"),
    timed("ferritin", 3000, "ng/mL", "2024-03-03T08:00:00Z"),
    timed("ferritin", 12000, "ng/mL", "2024-03-05T08:00:00Z"),
    timed("platelets", 90, "10*9/L", "2024-03-01T08:00:00Z"),
    {"code": "fever", "present": True},
]


def ferritin_item(report):
    return next(i for i in report.criterion("mas2016")["items"] if i["id"] == "mas2016.ferritin")


def test_at_defaults_to_the_latest_observation_and_uses_the_latest_value(engine):
    report = engine.explain(patient(SERIES))
    assert report.data["at"] == "2024-03-05T08:00:00Z"
    assert ferritin_item(report)["value"] == 12000


def test_at_picks_an_earlier_time_point(engine):
    report = engine.explain(patient(SERIES), at="2024-03-03T09:00:00Z")
    assert ferritin_item(report)["value"] == 3000


def test_values_older_than_the_window_are_not_in_force_but_kept_in_history(engine):
    report = engine.explain(patient(SERIES)).to_dict()
    # platelets were measured 96 h before at: outside the default 72 h window
    assert report["observations"]["window_hours"] == 72
    assert [o["code"] for o in report["observations"]["out_of_window"]] == ["platelets"]
    platelets = next(i for i in report["criteria"][1]["items"] if i["id"] == "mas2016.platelets")
    assert platelets["status"] == "missing"
    ferritin = next(f for f in report["findings"] if f["code"] == "ferritin")
    assert [h["value"] for h in ferritin["history"]] == [500, 3000, 12000]
    # the untimed fever finding applies at every time point
    assert report["criteria"][1]["items"][0]["status"] == "met"


def test_window_boundary_and_configuration(engine):
    exactly = engine.explain(patient(SERIES), at="2024-03-04T08:00:00Z")  # platelets exactly 72 h old
    assert next(i for i in exactly.criterion("mas2016")["items"] if i["id"] == "mas2016.platelets")["status"] == "met"
    wide = engine.explain(patient(SERIES), window=timedelta(hours=96))
    assert next(i for i in wide.criterion("mas2016")["items"] if i["id"] == "mas2016.platelets")["status"] == "met"
    unlimited = engine.explain(patient(SERIES), window=None)
    assert unlimited.data["observations"]["out_of_window"] == []
    with pytest.raises(kg.InputError):
        engine.explain(patient(SERIES), window=timedelta(hours=-1))


def test_hscore_probability_interpolates_the_published_table(engine):
    table = engine.kb.criteria_set("hscore").probability_table
    assert [interpolate(table, Fraction(s)) for s in (100, 169, 170, 240)] == [
        Fraction("0.01"), Fraction("0.526"), Fraction("0.54"), Fraction("0.99")]
    assert interpolate(table, Fraction(90)) == Fraction("0.01") and interpolate(table, Fraction(337)) == Fraction("0.99")


def test_post_test_probability_from_sensitivity_and_specificity(engine):
    met = patient([finding("fever"), lab("ferritin", 5000, "ng/mL"), lab("platelets", 100, "10*9/L"),
                   lab("ast", 100, "U/L")])
    r = engine.explain(met).criterion("mas2016")
    # default for a patient with sJIA: 10 % (ACR guideline), LR+ = 0.73 / 0.01 = 73
    assert r["post_test"]["pretest"] == 0.1 and r["post_test"]["lr_positive"] == 73
    assert r["post_test"]["probability"] == pytest.approx(float(post_test(Fraction("0.1"), Fraction("0.73"),
                                                                          Fraction("0.99"), positive=True)))
    r = engine.explain(met, pretest=0.5).criterion("mas2016")
    assert r["post_test"]["probability"] == pytest.approx(73 / 74, abs=1e-6)
    r = engine.explain(met, pretest={"mas2016": 0.2}).criterion("mas2016")
    assert r["post_test"]["pretest"] == 0.2 and r["post_test"]["pretest_source"] == "given"
    partial = engine.explain(patient([finding("fever"), lab("ferritin", 5000, "ng/mL")])).criterion("mas2016")
    low, high = partial["post_test"]["probability_range"]
    assert partial["status"] == "indeterminate" and low < 0.1 < high


def test_no_default_pretest_outside_a_documented_context(engine):
    r = engine.explain(patient([lab("scd25", 5000, "U/mL"), lab("ferritin", 5000, "ng/mL")],
                               conditions=(("malignancy", "confirmed"),))).criterion("ohi")
    assert r["status"] == "met" and r["post_test"]["probability"] is None
    assert "--pretest" in r["post_test"]["note"]


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "x", {"nope": 0.1}])
def test_bad_pretest_is_an_input_error(engine, bad):
    with pytest.raises(kg.InputError):
        engine.explain(patient([]), pretest=bad)


def run(*args):
    return subprocess.run([sys.executable, "-m", "kg.cli", *args], capture_output=True, text=True)


def test_cli_window_and_pretest(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(patient(SERIES)))
    done = run("explain", str(path), "--window", "100", "--pretest", "0.3", "--pretest", "hscore=0.05")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["observations"]["out_of_window"] == []
    by_id = {c["id"]: c for c in report["criteria"]}
    assert by_id["mas2016"]["post_test"]["pretest"] == 0.3 and by_id["hscore"]["post_test"]["pretest"] == 0.05
    for args, message in ((["--window", "-1"], "--window"), (["--pretest", "2"], "--pretest"),
                          (["--pretest", "foo=0.1"], "unknown criteria set")):
        done = run("explain", str(path), *args)
        assert done.returncode == 2 and message in done.stderr and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1
