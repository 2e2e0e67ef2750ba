"""The app as users meet it: ``python app.py`` on a free port, called through its API and in a browser.

The server runs from a temporary directory, so nothing depends on the current directory. The
browser tests drive Debian's headless Chromium through Playwright (with Chromium's fake camera
for the webcam); ``scripts/test.sh`` installs both, so they are skipped only on a machine
without ``/usr/bin/chromium``.
"""

import contextlib
import copy
import csv
import functools
import io
import json
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import Status
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from analysis.plots import GAP
from qkvae import load_image, save_qkvae
from qkvae.image import to_uint8
from qkvae.metrics import psnr
from qkvae_app import gpu
from qkvae_app.demo import build_demo
from qkvae_app.settings import EXAMPLES_DIR, Settings
from qkvae_app.tokens_tab import TokensTab
from tests.helpers import STL10_SAMPLES, free_port, serving, two_folder_zip

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a test-pattern camera
CAT = EXAMPLES_DIR / "photo-cat.png"


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    """Where the server's output goes."""
    return tmp_path_factory.mktemp("server") / "app.log"


@pytest.fixture(scope="module")
def server(weights_dir, server_log):
    """The URL of ``python app.py`` serving the seeded test weights."""
    with serving(weights_dir, server_log) as url:
        yield url


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return Client(server, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("downloads")))


def test_api_reconstruct_returns_psnr_and_ssim(client):
    out = client.predict(handle_file(CAT), "center_crop", api_name="/reconstruct")
    model_input, reconstruction, psnr, ssim = out[0], out[1], out[3], out[4]
    assert Image.open(model_input).size == Image.open(reconstruction).size == (96, 96)
    assert 0 < psnr < 100 and -1 <= ssim <= 1


def test_api_explains_bad_input_and_keeps_serving(client, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(text), "resize", api_name="/reconstruct")
    assert client.predict(handle_file(CAT), "resize", api_name="/reconstruct")[3] > 0


def test_concurrent_users_each_get_the_answer_for_their_own_image(server, model):
    calls = [(EXAMPLES_DIR / "photo-cat.png", "resize"), (EXAMPLES_DIR / "ood-text.png", "center_crop"),
             (EXAMPLES_DIR / "photo-coffee.png", "pad"), (EXAMPLES_DIR / "photo-rocket.png", "resize")]

    def one_user(call):
        c = Client(server, verbose=False, analytics_enabled=False, download_files=False)
        return c.predict(handle_file(call[0]), call[1], api_name="/reconstruct")[3]

    def expected(call):
        x = load_image(call[0], mode=call[1])
        return round(psnr(to_uint8(x), to_uint8(model.decode(model.encode(x[None]))[0])), 2)

    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(one_user, calls))
    assert answers == [expected(call) for call in calls] and len(set(answers)) == len(calls)


@pytest.fixture
def slow_opening(weights_dir, tmp_path, monkeypatch):
    """The URL of the app served from this process, its Tokens tab taking 3 s to open a grid (as on a
    loaded machine), so that a click can arrive while the grid is opening."""
    opened = TokensTab.open_tokens

    @functools.wraps(opened)
    def slow(*args):
        time.sleep(3)
        return opened(*args)

    monkeypatch.setattr(TokensTab, "open_tokens", slow)
    loaded = dict(gpu._loaded)
    blocks = build_demo(Settings(weights=weights_dir, data=tmp_path)).blocks
    port = free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    blocks.close()
    gpu._loaded.clear()
    gpu._loaded.update(loaded)


def test_a_token_clicked_while_its_grid_opens_is_shown_after_the_opening(slow_opening):
    client = Client(slow_opening, verbose=False, analytics_enabled=False, download_files=False)
    client.predict(handle_file(CAT), "resize", api_name="/reconstruct")  # the Tokens tab's grid, in this session
    opening = client.submit(24, 24, api_name="/open_tokens")  # as the page sends it when the reconstruction is in
    deadline = time.monotonic() + 60
    while opening.status().code != Status.PROCESSING and time.monotonic() < deadline:
        time.sleep(0.05)
    shown = client.predict(30, 10, api_name="/show_token")  # the click on the token map, while it opens
    assert opening.done()  # answered after the opening, in the order they were sent
    assert "Token row 30, column 10" in shown[4] and "0 of 2,304 tokens edited" in shown[4]
    assert "Token row 24, column 24" in opening.result()[4]


def _zip_of_examples(path: Path, copies: int = 1) -> Path:
    """A zip of the example images (``copies`` of each, in folders), as a user would upload."""
    with zipfile.ZipFile(path, "w") as z:
        for k in range(copies):
            for example in sorted(EXAMPLES_DIR.glob("*.png")):
                z.write(example, f"copy{k}/{example.name}")
    return path


def test_api_explore_returns_the_table_gallery_and_files(client, tmp_path):
    archive = _zip_of_examples(tmp_path / "examples.zip")
    summary, table, gallery, csv_file, json_file = client.predict(
        [handle_file(archive)], "resize", "PSNR", api_name="/explore")
    names = sorted(f"copy0/{p.name}" for p in EXAMPLES_DIR.glob("*.png"))
    assert table["headers"] == ["name", "PSNR (dB)", "SSIM", "expected PSNR (dB)", "residual (dB)", "OOD score",
                                "verdict"]
    assert [row[0] for row in table["data"]] == names
    assert f"<b>{len(names)}</b> images reconstructed" in summary
    assert len(gallery) == min(len(names), 12) and " dB" in gallery[0]["caption"]
    csv_lines = Path(csv_file["value"]).read_text().splitlines()  # the buttons come as updates
    assert csv_lines[0] == "name,psnr,ssim,expected_psnr,psnr_residual,ood_score,verdict" and len(csv_lines) == len(names) + 1
    assert Path(json_file["value"]).suffix == ".json" and json_file["interactive"]


def test_reconstruct_answers_while_an_explore_batch_runs(server, tmp_path):
    archive = _zip_of_examples(tmp_path / "many.zip", copies=8)
    batch = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    job = batch.submit([handle_file(archive)], "resize", "PSNR", api_name="/explore")
    deadline = time.monotonic() + 120
    running = (Status.PROCESSING, Status.PROGRESS)  # PROGRESS: a progress update has arrived
    while job.status().code not in running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status().code in running
    other = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    assert other.predict(handle_file(CAT), "resize", api_name="/reconstruct")[3] > 0
    assert not job.done()  # answered while the batch was still running
    assert len(job.result(timeout=600)[1]["data"]) == 8 * len(list(EXAMPLES_DIR.glob("*.png")))


def _page(p, server):
    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"]).new_page()
    page.goto(server)
    return browser, page


def _wait_for_reconstruction(page) -> float:
    """Wait until the reconstruction has loaded in the browser; returns the PSNR shown."""
    # The locator is resolved again on every retry: Gradio may replace the <img> while it renders.
    reconstruction = page.locator(".pixelated").filter(has_text="Reconstruction").locator("img")
    expect(reconstruction).to_have_js_property("naturalWidth", 96, timeout=120_000)  # loaded, not enlarged
    return float(psnr_field(page).input_value())


def psnr_field(page):
    """The Reconstruct tab's PSNR number (charts' axes and marks carry "PSNR (dB)" in their labels too)."""
    return page.get_by_role("spinbutton", name="PSNR (dB)", exact=True)


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="no /usr/bin/chromium: run scripts/test.sh, which installs it")


@needs_chromium
def test_browser_upload_shows_reconstruction_and_psnr_and_opens_a_clicked_token(server, tmp_path):
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            page.locator("input[type=file]").first.set_input_files(CAT)
            assert _wait_for_reconstruction(page) > 0
            expect(page.locator(".qk-status")).to_contain_text("model.safetensors")  # device and weights shown
            page.screenshot(path=tmp_path / "reconstruct.png", full_page=True)

            token_map = page.locator(".pixelated").filter(has_text="Token ids: click").locator("img")
            expect(token_map).to_have_js_property("naturalWidth", 480, timeout=120_000)  # 10 pixels a token
            box = token_map.bounding_box()  # the 48x48 map is drawn as a centred square inside the box
            side = min(box["width"], box["height"])
            token_map.click(position={"x": (box["width"] - side) / 2 + side * 10.5 / 48,  # row 30, column 10
                                      "y": (box["height"] - side) / 2 + side * 30.5 / 48})
            expect(page.get_by_text("Token row 30, column 10")).to_be_visible(timeout=60_000)  # the Tokens tab, on it
            # The tab's opening (its files) has landed, and the click's answer is still the one shown.
            expect(page.get_by_label("photo-cat-tokens.npy", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Token row 30, column 10")).to_be_visible()
            expect(page.get_by_label("row", exact=True)).to_have_value("30")
            expect(page.get_by_label("column", exact=True)).to_have_value("10")
            page.get_by_label("row", exact=True).fill("5")  # typed: that token
            expect(page.get_by_text("Token row 5, column 10")).to_be_visible(timeout=60_000)
        finally:
            browser.close()
    assert (tmp_path / "reconstruct.png").stat().st_size > 10_000


@needs_chromium
def test_browser_webcam_capture_is_reconstructed(server):
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            page.get_by_role("button", name="Capture from camera").click()
            page.get_by_role("button", name="Click to Access Webcam").click()
            # A capture before the first frame draws a 0x0 canvas and Gradio sends nothing: wait for frames.
            page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.videoWidth > 0)",
                                   timeout=60_000)
            page.get_by_role("button", name="capture photo").click()  # Chromium's fake camera: a test pattern
            assert _wait_for_reconstruction(page) > 0
        finally:
            browser.close()


@needs_chromium
@pytest.mark.skipif(not STL10_SAMPLES.is_dir(), reason=f"needs {STL10_SAMPLES}")
def test_browser_dataset_tab_shows_the_sample_grid_when_opened_and_resorts_it(server):
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            page.get_by_role("tab", name="Dataset").click()  # no button: opening the tab evaluates
            expect(page.locator(".qk-card")).to_contain_text("80 images from", timeout=120_000)
            expect(page.locator(".qk-card")).to_contain_text("The grid shows the 16 worst or best of all 80 images")
            expect(page.locator("body")).not_to_contain_text("split test")  # a folder has no splits
            grid = page.locator(".framed").filter(has_text="16 images").locator("img")
            expect(grid).to_have_js_property("naturalWidth", 16 * 96 + 15 * GAP)
            worst_first = grid.get_attribute("src")
            page.get_by_label("best first").check()
            expect(grid).not_to_have_attribute("src", worst_first, timeout=60_000)
            expect(grid).to_have_js_property("naturalWidth", 16 * 96 + 15 * GAP)
        finally:
            browser.close()


@needs_chromium
def test_browser_explore_tab_shows_table_and_gallery_and_opens_a_clicked_image(server, tmp_path):
    examples = sorted(EXAMPLES_DIR.glob("*.png"))
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            page.get_by_role("tab", name="Explore").click()
            upload = page.locator(".block").filter(has_text="Images or .zip archives").locator("input[type=file]")
            upload.set_input_files([_zip_of_examples(tmp_path / "set.zip"), examples[0]])
            page.get_by_role("button", name="Reconstruct and score them").click()
            expect(page.locator(".qk-card")).to_contain_text(f"{len(examples) + 1} images reconstructed",
                                                             timeout=120_000)
            table = page.locator("#explore-table")
            expect(table).to_contain_text(f"copy0/{examples[-1].name}")
            expect(table).to_contain_text("PSNR (dB)")
            tiles = page.locator(".qk-gallery img")
            expect(tiles).to_have_count(min(len(examples) + 1, 12))
            expect(tiles.first).to_have_js_property("naturalWidth", 2 * 96 + 2)
            page.screenshot(path=tmp_path / "explore.png", full_page=True)

            tiles.first.click()  # the worst image, in the Reconstruct tab with all its maps
            reconstruct_tab = page.get_by_role("tab", name="Reconstruct")
            expect(reconstruct_tab).to_have_attribute("aria-selected", "true")
            assert _wait_for_reconstruction(page) > 0
            expect(page.locator(".qk-card").filter(has_text="Out-of-distribution score")).to_be_visible()

            page.get_by_role("tab", name="Explore").click()
            table.get_by_role("columnheader", name="SSIM").click()  # sorted: rows are found by name, not position
            row = table.get_by_role("row").filter(has_text="copy0/photo-cat.png")
            shown_psnr = float(row.get_by_role("gridcell").nth(1).inner_text())
            row.get_by_role("gridcell").first.click()  # a row of the table opens that image too
            expect(reconstruct_tab).to_have_attribute("aria-selected", "true")
            expect(psnr_field(page)).to_have_value(str(shown_psnr), timeout=120_000)
        finally:
            browser.close()
    assert (tmp_path / "explore.png").stat().st_size > 10_000


def _zip_with(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_api_explore_reports_progress_as_it_runs(server, tmp_path):
    """gr.Progress reaches the client: a progress update per chunk, not only Gradio's timer."""
    archive = _zip_of_examples(tmp_path / "many.zip", copies=8)  # 72 images: two chunks of 64
    job = Client(server, verbose=False, analytics_enabled=False, download_files=False).submit(
        [handle_file(archive)], "resize", "PSNR", api_name="/explore")
    heard = set()
    while not job.done():
        for unit in job.status().progress_data or []:
            heard.add(unit.desc)
        time.sleep(0.02)
    assert len(job.result()[1]["data"]) == 72
    assert any(desc and "of 72 images" in desc for desc in heard), heard  # one per chunk, as it runs


def test_api_explore_skips_bad_archives_and_entries_and_processes_the_rest(client, tmp_path):
    good = (EXAMPLES_DIR / "photo-cat.png").read_bytes()
    nested = _zip_with(tmp_path / "nested.zip", {"inner.zip": b"PK", "ok.png": good})
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    formula = _zip_with(tmp_path / "names.zip", {"=HYPERLINK(1).png": good, "img.png": good})
    again = _zip_with(tmp_path / "photos.zip", {"img.png": good})
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    summary, table, gallery, csv_file, json_file = client.predict(
        [handle_file(p) for p in (nested, corrupt, formula, again, notes, CAT)], "resize", "PSNR", api_name="/explore")
    names = [row[0] for row in table["data"]]
    assert names == ["ok.png", "=HYPERLINK(1).png", "names.zip/img.png", "photos.zip/img.png", "photo-cat.png"]
    skipped = {s["name"]: s["reason"] for s in json.loads(Path(json_file["value"]).read_text())["skipped"]}
    assert skipped["nested.zip/inner.zip"].startswith("is a zip inside the zip")
    assert skipped["corrupt.zip"].startswith("not a readable zip archive")
    assert skipped["notes.txt"] == "not an image file or a .zip archive (by its name)"  # named, not "Invalid file type."
    assert "<b>5</b> images reconstructed" in summary and "notes.txt" in summary
    rows = list(csv.reader(Path(csv_file["value"]).read_text().splitlines()))
    assert rows[2][0] == "'=HYPERLINK(1).png"  # a spreadsheet shows it as text, never runs it


def test_api_explore_refuses_a_run_over_its_pixel_budget_from_the_headers(client, tmp_path):
    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_DEFLATED) as z:
        buffer = io.BytesIO()
        Image.new("L", (6000, 6000)).save(buffer, format="png")  # 36 Mpixel, a few kB
        for i in range(60):
            z.writestr(f"big{i:02d}.png", buffer.getvalue())
    with pytest.raises(AppError, match="2,160 megapixels to decode; the limit is 2,000 per run"):
        client.predict([handle_file(tmp_path / "big.zip")], "resize", "PSNR", api_name="/explore")


def test_api_one_message_for_every_image_over_the_pixel_limit(client, tmp_path):
    for side in (7000, 10000, 14000):  # under and over Pillow's own 89 and 179 Mpixel limits
        path = tmp_path / f"huge{side}.png"
        Image.new("1", (side, side)).save(path)
        with pytest.raises(AppError, match=f"huge{side}.png is {side * side / 1e6:,.1f} megapixels; the limit is 40"):
            client.predict(handle_file(path), "resize", api_name="/reconstruct")


def test_user_errors_are_logged_as_one_line_not_a_traceback(client, server_log, tmp_path):
    text = tmp_path / "notes-for-the-log.png"
    text.write_text("not an image")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(text), "resize", api_name="/reconstruct")
    log = server_log.read_text()
    lines = [line for line in log.splitlines() if "notes-for-the-log.png" in line]
    assert len(lines) == 1 and "Cannot read this image" in lines[0]
    assert "Traceback" not in log


def test_api_tokens_of_a_wrong_file_name_it(client, tmp_path):
    wrong = tmp_path / "my-ids.txt"
    wrong.write_text("1 2 3")
    with pytest.raises(AppError, match="my-ids.txt: .*npy or .json"):
        client.predict(handle_file(wrong), api_name="/decode_tokens")


def _explore_page(p, server, files):
    browser, page = _page(p, server)
    page.get_by_role("tab", name="Explore").click()
    page.locator(".block").filter(has_text="Images or .zip archives").locator("input[type=file]").set_input_files(files)
    return browser, page


@needs_chromium
def test_browser_explore_shows_progress_then_clears_results_after_a_refused_run(server, tmp_path):
    many = _zip_of_examples(tmp_path / "many.zip", copies=8)
    too_many = _zip_with(tmp_path / "too-many.zip", {f"x{i:03d}.png": b"x" for i in range(501)})
    with sync_playwright() as p:
        browser, page = _explore_page(p, server, [many])
        try:
            expect(page.get_by_text("a run takes 72 images")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Reconstruct and score them").click()
            expect(page.get_by_text(re.compile(r"\d+ of 72 images")).first
                   ).to_be_visible(timeout=60_000)  # the progress bar's words, while it runs
            page.screenshot(path=tmp_path / "progress.png")
            expect(page.locator(".qk-card")).to_contain_text("72 images reconstructed", timeout=180_000)
            expect(page.locator("#explore-gallery img")).to_have_count(12)

            page.locator(".block").filter(has_text="Images or .zip archives").locator("input[type=file]"
                                                                                      ).set_input_files([too_many])
            expect(page.get_by_text("a run would be refused")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Reconstruct and score them").click()
            expect(page.get_by_text("the limit is 500 per run").first).to_be_visible(timeout=60_000)
            expect(page.locator("#explore-gallery img")).to_have_count(0)  # the last run's results are gone
            expect(page.locator("#explore-table")).not_to_contain_text("copy0/")
            expect(page.get_by_role("button", name="Download the table (.csv)")).to_be_disabled()
            page.screenshot(path=tmp_path / "refused.png", full_page=True)
        finally:
            browser.close()


@needs_chromium
def test_browser_explore_gallery_captions_and_names(server, tmp_path):
    archive = _zip_of_examples(tmp_path / "set.zip", copies=2)  # 18 images: the gallery shows 12
    with sync_playwright() as p:
        browser, page = _explore_page(p, server, [archive])
        try:
            page.get_by_role("button", name="Reconstruct and score them").click()
            expect(page.locator(".qk-card")).to_contain_text("18 images reconstructed", timeout=180_000)
            gallery = page.locator("#explore-gallery")
            tiles = gallery.locator("img")
            expect(tiles).to_have_count(12)
            captions = gallery.locator(".caption-label")  # (this server has no OOD reference: ranked by PSNR)
            expect(captions).to_have_count(12)
            for i in range(12):  # the ranking value first, whatever the name's length
                assert re.match(r"\d+\.\d\d dB · copy\d/", captions.nth(i).inner_text())
            box = gallery.bounding_box()
            scroller = gallery.evaluate("g => [...g.querySelectorAll('*')].some(e => e.scrollHeight > e.clientHeight + 2"
                                        " && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))")
            assert not scroller  # all 12 shown, no box to scroll inside
            for i in range(12):
                tile = tiles.nth(i).bounding_box()
                assert box["y"] <= tile["y"] and tile["y"] + tile["height"] <= box["y"] + box["height"] + 1
            page.screenshot(path=tmp_path / "gallery.png", full_page=True)
            expect(page.get_by_text("Sort the table with a column's header menu")).to_be_visible()

            name = captions.first.inner_text().split(" · ")[-1].split("/")[-1]
            tiles.first.click()
            expect(page.get_by_role("tab", name="Reconstruct")).to_have_attribute("aria-selected", "true")
            expect(page.locator(".qk-opened")).to_contain_text(f"Showing {name}", timeout=120_000)
            page.get_by_role("tab", name="Tokens").click()
            stem = name.removesuffix(".png")
            expect(page.get_by_role("cell", name=f"{stem}-tokens.npy")).to_be_visible(timeout=60_000)
            upload = page.locator(".qk-token-upload")
            label, icon = upload.locator("label").first.bounding_box(), upload.locator("svg:not(label svg)").first.bounding_box()
            assert label["y"] + label["height"] <= icon["y"]  # the label does not cover the upload icon
            page.screenshot(path=tmp_path / "tokens.png", full_page=True)
        finally:
            browser.close()


# ---- the Compare tab: checkpoint B uploaded through the API and in the browser
@pytest.fixture(scope="module")
def perturbed_dir(model, tmp_path_factory):
    """The server's (seeded) weights with the decoder's last convolution nudged: checkpoint B."""
    b = copy.deepcopy(model)
    with torch.no_grad():
        b.decoder.conv_out.weight.add_(0.05 * torch.randn_like(b.decoder.conv_out.weight))
    return save_qkvae(b, tmp_path_factory.mktemp("b"))


def test_api_compare_after_uploading_b_returns_both_psnrs(server, perturbed_dir, tmp_path):
    client = Client(server, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    note = client.predict([handle_file(perturbed_dir / "model.safetensors"),
                           handle_file(perturbed_dir / "config.json")], api_name="/b_upload")  # B: state, not returned
    assert "B = <b>model.safetensors</b>" in note
    out = client.predict(handle_file(CAT), "resize", api_name="/compare")  # B is this session's
    psnr_a, _, psnr_b, ssim_b = out[4:8]
    assert 0 < psnr_a < 100 and 0 < psnr_b < 100 and psnr_a != psnr_b and -1 <= ssim_b <= 1
    assert "tokens differ" in out[10]


@needs_chromium
def test_browser_compare_one_image_and_a_set(server, perturbed_dir, tmp_path):
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


# ---- failure anatomy: Explore by group, the residual, the stress test

@pytest.fixture(scope="module")
def anatomy_server(weights_dir, ood_reference_path, tmp_path_factory):
    """The app serving the seeded weights with their OOD reference (OOD scores in Explore's groups)."""
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
def test_browser_explore_shows_groups_scatter_and_residual(anatomy_server, tmp_path):
    with _open_page(anatomy_server) as page:
        page.get_by_role("tab", name="Explore").click()
        upload = page.locator(".block").filter(has_text="Images or .zip archives").locator("input[type=file]")
        upload.set_input_files(two_folder_zip(tmp_path / "two.zip", EXAMPLES_DIR))
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
def test_browser_stress_button_shows_the_curves(anatomy_server, tmp_path):
    with _open_page(anatomy_server) as page:
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


@needs_chromium
def test_browser_probe_tab_samples_images_with_a_seed(server):
    pytest.importorskip("transformers")
    with sync_playwright() as p:
        browser, page = _page(p, server)
        try:
            page.get_by_role("tab", name="LM probe").click()
            expect(page.locator("body")).to_contain_text("bits per code")
            page.get_by_role("button", name="Sample from the probe LM").click()
            expect(page.locator("body")).to_contain_text("2 samples from seed 0 in", timeout=120_000)
            tiles = page.locator("#probe-gallery img")
            expect(tiles).to_have_count(2)
            expect(tiles.first).to_have_js_property("naturalWidth", 96)
        finally:
            browser.close()
