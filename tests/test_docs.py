"""The criteria reference page is generated from the ontology and committed; it must not be stale."""

from conftest import ROOT
from kg.docs import criteria_markdown


def test_criteria_page_is_up_to_date(engine):
    committed = (ROOT / "docs" / "criteria.md").read_text(encoding="utf-8")
    assert committed == criteria_markdown(engine.kb), "regenerate with: python -m kg.docs > docs/criteria.md"


def test_criteria_page_lists_every_set_with_its_source(engine):
    page = criteria_markdown(engine.kb)
    for c in engine.kb.criteria:
        assert f"## `{c.id}`" in page and c.sources[0] in page
