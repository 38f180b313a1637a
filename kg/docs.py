"""Write the criteria reference page (docs/criteria.md) from the ontology.

The page is generated, never hand-edited, so it cannot drift from the data the
engine evaluates; ``tests/test_docs.py`` fails when the committed page is stale.
Regenerate with ``python -m kg.docs > docs/criteria.md``.

>>> from kg.knowledge import load_knowledge
>>> page = criteria_markdown(load_knowledge())
>>> row = [line for line in page.splitlines() if line.startswith("| [`hscore`]")][0]
>>> row.split(" | ")[3] == load_knowledge().criteria_set("hscore").items["hscore.total"].label
True
"""

from __future__ import annotations

import sys

from .findings import number
from .errors import OntologyError
from .knowledge import CriteriaSet, CriterionItem, KnowledgeBase, load_knowledge

__all__ = ["criteria_markdown"]

INTRO = """# Criteria and scores

Generated from `ontology/criteria/*.ttl` by `python -m kg.docs`; do not edit by hand.
Every report carries every set below, under `criteria[]`, with the stable `id`.

How every set is evaluated (the decisions are in `reference/semantics.md`; the numbers in brackets
below refer to it):

- **Units.** The patient's value is converted to the unit the criterion was published in, with exact
  rational factors, and compared with the printed threshold; thresholds are never converted [1]. So
  a value converted from another unit is judged exactly as the publication's unit prints it.
- **Exact arithmetic.** Values are read as exact decimals and scores are computed in rationals, so a
  value exactly on a cut-off lands on the published side, for formulas too (the MS score).
- **Missing data.** An item without its input is `missing`; a set is `indeterminate` when some
  completion of its missing items would flip the verdict, and then `would_decide` names the inputs
  that would settle it [2]. `score_range` is the lowest and highest score the missing items allow;
  `null` at an end means unbounded (formula inputs are only known to be ≥ 0) [6].
- **`score`.** A count rule: the number of counted items met [5]. A points score: the points that are
  certain, so `score == score_range[0]` [4]; a points item is `met` when it certainly scores [3]. A
  formula (MS score, ferritin/ESR): the exact value, or `null` when an input is missing or censored.
- **Censored results** (`"comparator": ">"` etc.) decide an item only when every value they allow
  gives the same answer [14].
- **Time.** Criteria are evaluated at `at` (default: the latest observation; `--at` to choose). Each
  code uses its most recent value at or before `at` and no older than the look-back window
  (default 72 hours; `--window HOURS`, `Engine.explain(window=...)`); untimed observations always
  apply; older values stay in the finding's `history` for trends and are listed under
  `observations.out_of_window` [8].
- **Post-test probability.** For a set with published sensitivity and specificity, `post_test`
  gives the probability after the result: met multiplies the pre-test odds by LR+ = sens/(1 − spec),
  not met by LR− = (1 − sens)/spec, indeterminate gives the range between the two. The pre-test
  probability is `--pretest P` (every set) or `--pretest ID=P` (one set), else the documented
  default for the patient's context listed below, else none (the report says so). Sets published
  with sensitivity and specificity of 1.0 (Kostik 2015, a derivation cohort) have infinite
  likelihood ratios and get no post-test probability.
- **Where the literature disagrees** the engine follows `reference/criteria.md`'s recommendation:
  HLH-2004 uses the original 2007 operators and units, not the widely copied Jordan 2011
  adaptation; OHI uses the strict operators of its abstract and key points, not those of the
  paper's Figure 3 legend [34]. Each set's "Choices made" below says exactly what was chosen.
"""


def _rule(item: CriterionItem, kb: KnowledgeBase) -> str:
    unit = f" {item.unit}" if item.unit else ""
    name = item.attribute or (kb.terms[item.input_name].notation if item.input_name else None)  # type: ignore[index]
    kind = item.combination
    if kind == "at-least":
        return f"at least {item.min_count} of the parts"
    if kind in ("all", "any"):
        return f"{kind} of the parts"
    if kind == "count-points":
        return "number of parts met: " + "; ".join(f"{b.comparator} {number(b.threshold)} → {number(b.points)}" for b in item.bands)
    if kind == "sum":
        return f"total points {item.comparator} {number(item.threshold)}"
    if kind == "linear":
        return f"Σ coefficient × value {item.comparator} {number(item.threshold)}"
    if kind == "ratio":
        return f"{item.numerator} / {item.denominator} {item.comparator} {number(item.threshold)}"
    if item.bands:
        return f"`{name}`: " + "; ".join(f"{b.comparator} {number(b.threshold)}{unit} → {number(b.points)}" for b in item.bands)
    if item.coefficient is not None:
        what = f"`{name}` in{unit}" if item.analyte else f"`{name}` present (1/0)"
        return f"{number(item.coefficient)} × {what}"
    if item.finding:
        text = f"`{name}` present"
        if item.sites:
            text += " at " + " or ".join(kb.terms[s].notation or s for s in item.sites)
        if item.comparator:
            text += f", size {item.comparator} {number(item.threshold)}{unit}"
        if item.measured_rule:
            r = item.measured_rule
            text += f" (or measured {kb.lab_tests[r.analyte].notation} {r.comparator} {number(r.threshold)} {r.unit})"
        if item.points is not None:
            text += f" → {number(item.points)}"
        return text
    if item.comparator:
        text = f"`{name}` {item.comparator} {number(item.threshold)}{unit}"
        if item.age_threshold:
            days, threshold = item.age_threshold
            text += f" (younger than {number(days)} days: {item.comparator} {number(threshold)}{unit})"
        return text
    return f"`{name}` in{unit}"


def _items(c: CriteriaSet, kb: KnowledgeBase) -> list[str]:
    rows = ["| item | rule | note |", "|---|---|---|"]
    seen: set[str] = set()

    def walk(item_id: str, depth: int) -> None:
        item = c.items[item_id]
        rows.append(f"| {'&nbsp;&nbsp;' * depth}`{item.id}` {item.label} | {_rule(item, kb)} | {item.note.replace('|', '/')} |")
        if item_id in seen:
            return
        seen.add(item_id)
        for child in (*item.parts, *(x for x in (item.numerator, item.denominator) if x)):
            walk(child, depth + 1)

    walk(c.rule, 0)
    return rows


def _set(c: CriteriaSet, kb: KnowledgeBase) -> list[str]:
    lines = [f"## `{c.id}`", "", f"**{c.label}.** {c.definition}", ""]
    population = ", ".join(kb.terms[p].notation or p for p in c.population) or "every patient (no entry condition)"
    lines += [f"- **Population (entry condition):** {population}. {c.population_note}",
              f"- **Citation:** {c.citation} Sources: {', '.join(c.sources)}."]
    if c.scored_items:
        lines.append(f"- **Score:** {', '.join(f'`{s}`' for s in c.scored_items)}.")
    if c.sensitivity is not None:
        lines.append(f"- **Sensitivity / specificity:** {number(c.sensitivity)} / {number(c.specificity)}.")
    if c.performance_note:
        lines.append(f"- **Performance:** {c.performance_note}")
    if c.decision_note:
        lines.append(f"- **Choices made:** {c.decision_note}")
    for default in c.pretest_defaults:
        context = f"with {kb.terms[default.context].notation}" if default.context else "any other patient"
        lines.append(f"- **Default pre-test probability** ({context}): {number(default.probability)} — "
                     f"{default.comment} [{default.source}]")
    if c.probability_table:
        below, above = c.probability_labels
        rows = ", ".join(f"{number(s)} → {float(p) * 100:g}%" for s, p in c.probability_table)
        lines.append(f"- **Probability table:** {rows}; linear interpolation between rows; below the first row "
                     f"{below}, above the last {above}.")
    return lines + [""] + _items(c, kb) + [""]


def criteria_markdown(kb: KnowledgeBase) -> str:
    """The whole criteria reference page, in Markdown."""
    lines = [INTRO, "| id | set | population | rule | source |", "|---|---|---|---|---|"]
    for c in kb.criteria:
        population = ", ".join(kb.terms[p].notation or p for p in c.population) or "all"
        lines.append(f"| [`{c.id}`](#{c.id}) | {c.label} | {population} | {c.items[c.rule].label} | "
                     f"{c.sources[0] if c.sources else ''} |")
    lines.append("")
    for c in kb.criteria:
        lines += _set(c, kb)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    try:
        sys.stdout.write(criteria_markdown(load_knowledge()))
    except OntologyError as error:
        sys.stderr.write(f"kg.docs: error: ontology: {error}\n")
        raise SystemExit(2) from None
