"""The docs stay true: the criteria page is generated from the ontology, and the README's examples run."""

from conftest import ROOT
from kg.docs import criteria_markdown


def test_criteria_page_is_up_to_date(engine):
    committed = (ROOT / "docs" / "criteria.md").read_text(encoding="utf-8")
    assert committed == criteria_markdown(engine.kb), "regenerate with: python -m kg.docs > docs/criteria.md"


def test_criteria_page_lists_every_set_with_its_source(engine):
    page = criteria_markdown(engine.kb)
    for c in engine.kb.criteria:
        assert f"## `{c.id}`" in page and c.sources[0] in page


def _block(heading: str, language: str) -> str:
    """The first fenced block of ``language`` after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(heading):]
    start = after.index(f"```{language}\n") + len(language) + 4
    return after[start:after.index("```", start)]


def test_readme_alert_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(_block("### Explain one value another tool flagged", "python"), "README.md", "exec"), scope)
    assert scope["answer"]["summary"].startswith("esr 12 mm/h is normal; ESR/CRP discordance")


def test_readme_fhir_example_is_a_bundle_the_engine_reads(engine):
    import json

    report = engine.explain(json.loads(_block("### FHIR R4 input", "json"))).to_dict()
    assert report["patient"] == "p1" and report["findings"][0]["interpretation"] == "high"
