"""The failure-anatomy views as users meet them: ``python app.py`` serving the seeded test weights
with their OOD reference, in Debian's headless Chromium (see ``tests/test_app_server.py``): the
Explore tab's groups, scatter and residual column, and the Reconstruct tab's stress test."""

import contextlib

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.test_app_anatomy import CAT, _two_folders
from tests.test_app_server import (
    _page,
    _wait_for_reconstruction,
    needs_chromium,
    serving,
)


@pytest.fixture(scope="module")
def server(weights_dir, ood_reference_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("anatomy-server") / "app.log"
    with serving(weights_dir, log, QKVAE_REFERENCE=str(ood_reference_path)) as url:
        yield url


def _chart(page, elem_id: str):
    """The drawing of a browser-drawn chart (gr.ScatterPlot, gr.LinePlot)."""
    return page.locator(f"#{elem_id}").locator("canvas, svg").first


@contextlib.contextmanager
def _open_page(server):
    """A page of the app in Chromium, closed afterwards."""
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            yield page
        finally:
            browser.close()


@needs_chromium
def test_browser_explore_shows_groups_scatter_and_residual(server, tmp_path):
    with _open_page(server) as page:
        page.get_by_role("tab", name="Explore").click()
        upload = page.locator(".block").filter(has_text="Images or .zip archives").locator("input[type=file]")
        upload.set_input_files(_two_folders(tmp_path / "two.zip"))
        page.get_by_role("button", name="Reconstruct and score them").click()
        expect(page.locator(".qk-card")).to_contain_text("9 images reconstructed", timeout=180_000)
        expect(page.locator("#explore-table")).to_contain_text("residual (dB)")
        groups = page.locator("#group-table")
        expect(groups).to_contain_text("AUROC vs reference", timeout=60_000)
        for name in ("oods", "photos"):
            expect(groups.get_by_role("row").filter(has_text=name)).to_have_count(1)
        expect(page.locator("#group-note")).to_contain_text("AUROCs against photos")
        expect(_chart(page, "group-scatter")).to_be_visible(timeout=60_000)
        expect(_chart(page, "group-distribution")).to_be_visible()
        page.get_by_label("residual", exact=True).check()
        expect(page.locator(".qk-gallery").first).to_contain_text("vs expected", timeout=60_000)

        page.get_by_label("Reference group").click()  # another reference: the AUROCs are against it
        page.get_by_role("option", name="oods").click()
        expect(page.locator("#group-note")).to_contain_text("AUROCs against oods", timeout=60_000)
        page.screenshot(path=tmp_path / "groups.png", full_page=True)
    assert (tmp_path / "groups.png").stat().st_size > 10_000


@needs_chromium
def test_browser_stress_button_shows_the_curves(server, tmp_path):
    with _open_page(server) as page:
        page.locator("input[type=file]").first.set_input_files(CAT)
        assert _wait_for_reconstruction(page) > 0
        expect(page.locator(".qk-expected")).to_contain_text("than a photo this detailed would be")
        page.get_by_role("button", name="Stress-test this image").click()
        expect(page.locator(".qk-card").filter(has_text="Stress test of photo-cat.png")).to_be_visible(
            timeout=300_000)
        for label in ("Scale", "Shift", "Corruptions", "Token noise"):
            chart = page.locator(".block").filter(has_text=label).locator("img").first
            expect(chart).to_be_visible()
            assert chart.evaluate("img => img.naturalWidth") > 200, label
        rounding = page.locator(".pixelated").filter(has_text="Rounding cost per token").locator("img")
        expect(rounding).to_have_js_property("naturalWidth", 48)
        page.screenshot(path=tmp_path / "stress.png", full_page=True)
    assert (tmp_path / "stress.png").stat().st_size > 10_000
