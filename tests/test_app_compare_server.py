"""The Compare tab as users meet it: ``python app.py`` (``tests/test_app_server.py``'s server),
checkpoint B uploaded through the API and in a real browser, one image and a set compared."""

import copy
import zipfile

import pytest
import torch
from gradio_client import Client, handle_file
from playwright.sync_api import expect, sync_playwright

from qkvae import save_qkvae
from qkvae_app.settings import EXAMPLES_DIR
from tests.test_app_server import CAT, _page, needs_chromium, server, server_log  # noqa: F401 — its own server


@pytest.fixture(scope="module")
def perturbed_dir(model, tmp_path_factory):
    """The server's (seeded) weights with the decoder's last convolution nudged: checkpoint B."""
    b = copy.deepcopy(model)
    with torch.no_grad():
        b.decoder.conv_out.weight.add_(0.05 * torch.randn_like(b.decoder.conv_out.weight))
    return save_qkvae(b, tmp_path_factory.mktemp("b"))


def test_api_compare_after_uploading_b_returns_both_psnrs(server, perturbed_dir, tmp_path):  # noqa: F811
    client = Client(server, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    note = client.predict([handle_file(perturbed_dir / "model.safetensors"),
                           handle_file(perturbed_dir / "config.json")], api_name="/b_upload")  # B: state, not returned
    assert "B = <b>model.safetensors</b>" in note
    out = client.predict(handle_file(CAT), "resize", api_name="/compare")  # B is this session's
    psnr_a, _, psnr_b, ssim_b = out[4:8]
    assert 0 < psnr_a < 100 and 0 < psnr_b < 100 and psnr_a != psnr_b and -1 <= ssim_b <= 1
    assert "tokens differ" in out[10]


@needs_chromium
def test_browser_compare_one_image_and_a_set(server, perturbed_dir, tmp_path):  # noqa: F811
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for example in sorted(EXAMPLES_DIR.glob("*.png")):
            z.write(example, f"set/{example.name}")
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            page.get_by_role("tab", name="Compare").click()
            page.locator("#compare-b-upload input[type=file]").set_input_files(
                [perturbed_dir / "model.safetensors", perturbed_dir / "config.json"])
            expect(page.get_by_text("B = model.safetensors")).to_be_visible(timeout=120_000)
            page.locator("#compare-image input[type=file]").set_input_files(CAT)
            expect(page.locator("#compare-opened")).to_contain_text("photo-cat.png", timeout=120_000)
            psnr_a, psnr_b = (float(page.get_by_label(f"PSNR {side} (dB)").input_value()) for side in "AB")
            assert 0 < psnr_a < 100 and 0 < psnr_b < 100 and psnr_a != psnr_b
            expect(page.get_by_text("tokens differ")).to_be_visible()

            page.get_by_role("tab", name="Explore").click()
            upload = page.locator(".block").filter(has_text="Images or .zip archives").locator("input[type=file]")
            upload.set_input_files(archive)
            expect(page.get_by_text("a run takes")).to_be_visible(timeout=60_000)
            page.get_by_role("tab", name="Compare").click()
            page.get_by_role("button", name="Compare on the Explore tab's upload").click()
            count = len(list(EXAMPLES_DIR.glob("*.png")))
            expect(page.locator("#compare-summary")).to_contain_text(f"{count} images.", timeout=120_000)
            expect(page.locator("#compare-summary")).to_contain_text("dPSNR (B − A)")
            tiles = page.locator("#compare-gallery img")
            expect(tiles).to_have_count(count)
            page.screenshot(path=tmp_path / "compare.png", full_page=True)
            worst = page.locator("#compare-gallery").get_by_text(" dB · ").first.inner_text().split(" · ")[-1]
            tiles.first.click()  # the worst regression, in the one-image comparison
            expect(page.locator("#compare-opened")).to_contain_text(worst.split("/")[-1].rsplit(".", 1)[0],
                                                                    timeout=120_000)
        finally:
            browser.close()
    assert (tmp_path / "compare.png").stat().st_size > 10_000
