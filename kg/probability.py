"""Probabilities: a score's published probability table, and post-test probability.

The HScore paper gives a table of probabilities by score and no formula
(reference/criteria.md section 5).  Between adjacent rows the probability is
interpolated linearly, exact at every row; outside the rows it is clamped to the
outer row and labelled as the paper does ("<1%", ">99%") -- semantics 30.

Post-test probability follows Bayes' rule with the set's published
sensitivity and specificity: a met set multiplies the pre-test odds by
LR+ = sens / (1 - spec), a set that is not met by LR- = (1 - sens) / spec; an
indeterminate set gives the range between the two.

>>> from fractions import Fraction as F
>>> table = ((F(160), F("0.40")), (F(170), F("0.54")))
>>> float(interpolate(table, F(169))), interpolate(table, F(100)) == F("0.40")
(0.526, True)
>>> round(float(post_test(F("0.10"), F("0.73"), F("0.99"), positive=True)), 3)
0.89
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .criteria import SetResult
from .findings import number
from .knowledge import CriteriaSet, KnowledgeBase
from .patient import Patient

__all__ = ["interpolate", "table_probability", "post_test", "pretest_for", "post_test_report"]


def interpolate(table: tuple[tuple[Fraction, Fraction], ...], score: Fraction) -> Fraction:
    """Linear interpolation in an ascending (score, probability) table, clamped at its ends."""
    if score <= table[0][0]:
        return table[0][1]
    if score >= table[-1][0]:
        return table[-1][1]
    for (x0, y0), (x1, y1) in zip(table, table[1:]):
        if x0 <= score <= x1:
            return y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    raise AssertionError("unreachable: the table is ascending")


def _label(c: CriteriaSet, score: Fraction, probability: Fraction) -> str:
    below, above = c.probability_labels
    if score < c.probability_table[0][0] and below:
        return below
    if score > c.probability_table[-1][0] and above:
        return above
    return f"{float(probability * 100):.3g}%"


def table_probability(c: CriteriaSet, result: SetResult) -> dict[str, Any] | None:
    """``probability`` at the score and ``probability_range`` at the ends of ``score_range``."""
    if not c.probability_table or result.score is None or result.score_range is None:
        return None
    low, high = result.score_range
    p = interpolate(c.probability_table, result.score)
    p_low = interpolate(c.probability_table, low) if low is not None else None
    p_high = interpolate(c.probability_table, high) if high is not None else None
    return {"probability": number(p), "probability_label": _label(c, result.score, p),
            "probability_range": [number(p_low), number(p_high)],
            "probability_method": "linear interpolation between rows of the published table (semantics 30)"}


def post_test(pretest: Fraction, sensitivity: Fraction, specificity: Fraction, *, positive: bool) -> Fraction:
    """Bayes' rule: probability of the condition after a positive or negative result."""
    if positive:
        hit, false = sensitivity * pretest, (1 - specificity) * (1 - pretest)
    else:
        hit, false = (1 - sensitivity) * pretest, specificity * (1 - pretest)
    return hit / (hit + false)


def pretest_for(c: CriteriaSet, patient: Patient, kb: KnowledgeBase,
                given: dict[str, Fraction] | None) -> tuple[Fraction, str, str] | None:
    """(pre-test probability, where it came from, comment): --pretest, else the ontology's default by context."""
    given = given or {}
    if c.id in given:
        return given[c.id], "given", f"--pretest {c.id}={number(given[c.id])}"
    if "*" in given:
        return given["*"], "given", f"--pretest {number(given['*'])}"
    for default in c.pretest_defaults:
        if default.context is None or any(kb.is_a(cond.term, default.context) for cond in patient.conditions):
            return default.probability, default.source, default.comment
    return None


def post_test_report(c: CriteriaSet, result: SetResult, patient: Patient, kb: KnowledgeBase,
                     given: dict[str, Fraction] | None) -> dict[str, Any] | None:
    """The report's ``post_test`` block for a set with published sensitivity and specificity."""
    sens, spec = c.sensitivity, c.specificity
    if sens is None or spec is None:
        return None
    out: dict[str, Any] = {"sensitivity": number(sens), "specificity": number(spec), "pretest": None,
                           "pretest_source": None, "probability": None, "probability_range": None}
    if not (0 < sens < 1 and 0 < spec < 1):
        out["note"] = ("the published sensitivity/specificity of 1.0 give infinite likelihood ratios "
                       "(a derivation-cohort figure); no post-test probability is computed")
        return out
    out["lr_positive"], out["lr_negative"] = number(sens / (1 - spec)), number((1 - sens) / spec)
    if result.status == "not_applicable":
        out["note"] = "the set does not apply to this patient"
        return out
    pretest = pretest_for(c, patient, kb, given)
    if pretest is None:
        out["note"] = "no documented default pre-test probability for this context; give one with --pretest"
        return out
    p, source, comment = pretest
    out.update(pretest=number(p), pretest_source=source, pretest_note=comment)
    positive, negative = post_test(p, sens, spec, positive=True), post_test(p, sens, spec, positive=False)
    if result.status == "met":
        out["probability"] = number(positive)
    elif result.status == "not_met":
        out["probability"] = number(negative)
    else:  # indeterminate: whichever way the missing items fall
        out["probability_range"] = [number(negative), number(positive)]
    return out
