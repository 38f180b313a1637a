"""Regenerate the README's screenshots of the HTML views (docs/img/*.png).

Run after changing the views: ``python docs/screenshots.py``.  It opens the pages as a user would,
in Debian's chromium (``apt-get install -y chromium``) driven by Playwright, over file:// and offline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import kg

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    report = kg.Engine().explain(ROOT / "examples" / "patients" / "sjia-mas.json")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        explorer = kg.graph_view().save(Path(tmp) / "kg.html")
        patient = kg.graph_view(report=report).save(Path(tmp) / "patient.html")
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        context = browser.new_context(viewport={"width": 1440, "height": 860}, offline=True)
        page = context.new_page()

        page.goto(explorer.as_uri())
        page.wait_for_function("window.masKg && window.masKg.ready")
        page.screenshot(path=IMAGES / "knowledge-graph.png")
        page.fill("#search", "ferritin")
        page.press("#search", "Enter")
        page.screenshot(path=IMAGES / "knowledge-graph-ferritin.png")

        page.goto(patient.as_uri())
        page.wait_for_function("window.masKg && window.masKg.ready")
        page.click("#findings li[data-code='fibrinogen'] button")
        page.screenshot(path=IMAGES / "patient-view.png")
        browser.close()
    for image in sorted(IMAGES.glob("*.png")):
        print(image.relative_to(ROOT), image.stat().st_size)


if __name__ == "__main__":
    main()
