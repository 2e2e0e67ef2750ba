"""The app's handlers called as plain functions: outputs, token tools, dataset tab, and bad inputs.

The demo is built with ``build_demo`` from explicit settings (the seeded test weights, their OOD
reference from conftest, and a three-image dataset); other tests build it with other settings.
"""

import json
import shutil
import zipfile
from dataclasses import replace
from html import escape

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from analysis import plots
from analysis.reference import REFERENCE_PATH
from qkvae.metrics import psnr, ssim
from qkvae import fsq, load_image, load_tokens
from qkvae.image import to_uint8
from qkvae.tokens import lm_sequence
from qkvae_app import gpu, views
from qkvae_app.dataset import DatasetPass
from qkvae_app.dataset_tab import DatasetTab
from qkvae_app.demo import build_demo, inspect_token
from qkvae_app.explore_tab import open_gallery_image, open_table_row
from qkvae_app.settings import EXAMPLES_DIR, Settings


@pytest.fixture(scope="module")
def app(weights_dir, ood_reference_path, tmp_path_factory):
    data = tmp_path_factory.mktemp("app") / "data"
    data.mkdir()
    for name in ("photo-cat", "photo-coffee", "ood-text"):
        shutil.copy(EXAMPLES_DIR / f"{name}.png", data)
    yield build_demo(Settings(weights=weights_dir, reference=ood_reference_path, data=data))
    gpu._loaded.clear()


@pytest.fixture
def other_settings(app):
    """Builds of the demo with other settings hand the process's model work other weights: put
    the module's back afterwards."""
    loaded = dict(gpu._loaded)
    yield
    gpu._loaded.clear()
    gpu._loaded.update(loaded)


def _reconstruct(app, image, mode="resize"):
    return app.reconstruct.reconstruct(image, mode)


@pytest.fixture
def photo(tmp_path):
    """A 150x100 photo, so that the three resize modes differ."""
    path = tmp_path / "wide.png"
    Image.open(EXAMPLES_DIR / "photo-coffee.png").resize((150, 100)).save(path)
    return path


def _error(fn, *args) -> str:
    with pytest.raises(gr.Error) as e:
        fn(*args)
    return e.value.message


def test_reconstruct_outputs(app, photo, model):
    view = _reconstruct(app, str(photo))
    x = load_image(photo, mode="resize")
    expected = to_uint8(model.decode(model.encode(x[None]))[0])
    np.testing.assert_array_equal(view.model_input, to_uint8(x))
    np.testing.assert_array_equal(view.reconstruction, expected)
    assert view.jpeg.shape == (96, 96, 3) and "JPEG q" in view.rate_panel
    assert view.psnr == round(psnr(view.model_input, expected), 2) and view.ssim == round(ssim(view.model_input, expected), 4)
    assert type(view.psnr) is float and type(view.ssim) is float  # numpy scalars reach API clients as strings
    grid = view.tokens.grid
    np.testing.assert_array_equal(view.token_map[::10, ::10], plots.token_heatmap(grid, app.studio.config.codebook_size))  # 10 pixels a token
    reference = app.studio.reference
    score = reference.score(view.model_input, grid)
    np.testing.assert_array_equal(view.ood_map[::10, ::10],
                                  plots.ood_map_heatmap(reference.token_map(view.model_input, grid)))
    assert score.verdict.label in view.ood_panel and escape(score.verdict.explanation) in view.ood_panel
    assert f"{score.score:.2f}" in view.ood_panel and "32,041" in view.rate_panel
    low, high = (f"<td>{score.percentiles[t]:.2f}</td>" for t in ("simple", "complex"))
    assert low in view.ood_panel and high in view.ood_panel and "tested both ways" in view.ood_panel  # explained
    counts = np.bincount(grid.ravel(), minlength=app.studio.config.codebook_size)
    assert view.codebook_chart.value["data"] == views.codebook_frame(counts).values.tolist()
    assert view.codebook_chart.label.endswith("(tokens per code id, in bins of 128)")  # the x axis, in words
    digits = fsq.indices_to_digits(grid.ravel(), app.studio.config.levels)
    for k, (frame, n) in enumerate(zip(view.level_charts, app.studio.config.levels, strict=True)):
        np.testing.assert_allclose(frame["share"], np.bincount(digits[:, k], minlength=n) / grid.size)
    assert view.tokens.name == "wide" and "wide.png" in view.opened
    np.testing.assert_array_equal(grid.ravel(), model.encode(x[None])[0].numpy())
    assert len(view.values()) == len(app.reconstruct.outputs)  # one output per value


def test_reconstruct_takes_gradio_file_payloads_and_modes(app, photo):
    by_path = _reconstruct(app, str(photo))
    by_payload = _reconstruct(app, {"path": str(photo), "orig_name": "holiday.png"})
    np.testing.assert_array_equal(by_path.reconstruction, by_payload.reconstruction)
    assert by_payload.tokens.name == "holiday" and "holiday.png" in by_payload.opened  # the name given
    padded = _reconstruct(app, str(photo), "pad").model_input
    cropped = _reconstruct(app, str(photo), "center_crop").model_input
    assert (padded[0] == 128).all() and not (cropped[0] == 128).all()  # grey bars above and below


def test_cleared_input_clears_outputs(app):
    assert _reconstruct(app, None) is None
    served = app.blocks.fns[next(i for i, fn in app.blocks.fns.items() if fn.api_name == "reconstruct")]
    assert served.fn(None, "resize") == [None] * len(served.outputs) == [None] * len(app.reconstruct.outputs)


def test_bad_inputs_explain_and_the_app_keeps_serving(app, tmp_path, photo, caplog):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[:400])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"
    Image.new("1", (8000, 6000)).save(huge)  # 48 Mpixel, a small file
    assert "not an image" in _error(_reconstruct, app, str(text))
    assert "corrupt or truncated" in _error(_reconstruct, app, str(truncated))
    assert "empty" in _error(_reconstruct, app, str(empty))
    assert "huge.png is 48.0 megapixels; the limit is 40" in _error(_reconstruct, app, str(huge))
    assert "mode" in _error(_reconstruct, app, str(photo), "stretch")
    assert _reconstruct(app, str(photo)).psnr > 0
    logged = [r for r in caplog.records if r.name == "qkvae_app"]
    assert len(logged) == 5 and all(r.exc_info is None and "\n" not in r.getMessage() for r in logged)


def test_token_files_and_decoding_round_trip(app, photo, tmp_path, model):
    tokens = _reconstruct(app, str(photo)).tokens
    shown = app.tokens.open_tokens(tokens, 3, 4)
    assert [p.rsplit("/", 1)[1] for p in shown.token_files] == ["wide-tokens.npy", "wide-tokens.json"]
    for path in shown.token_files:
        np.testing.assert_array_equal(load_tokens(path), tokens.grid)
    np.testing.assert_array_equal(shown.grid_view, views.token_grid_view(tokens.grid, 15360, 3, 4))
    assert "row 3, column 4" in shown.token_info
    np.testing.assert_array_equal(shown.change_view, plots.error_heatmap(np.zeros((96, 96)), views.CHANGE_VMAX))
    again = app.tokens.decode_token_file({"path": shown.token_files[1], "orig_name": "wide-tokens.json"})
    np.testing.assert_array_equal(again.grid, tokens.grid)
    np.testing.assert_array_equal(again.decoded, tokens.decoded)
    assert again.name == "wide"


def test_wrong_token_files_explain_naming_the_file(app, tmp_path):
    short = tmp_path / "short.json"
    short.write_text(json.dumps(list(range(100))))
    big = tmp_path / "big.npy"
    np.save(big, np.full(2304, 15360))
    other = tmp_path / "ids.txt"
    other.write_text("1 2 3")
    assert "expected 2304" in _error(app.tokens.decode_token_file, str(short))
    assert "0..15359" in _error(app.tokens.decode_token_file, str(big))
    message = _error(app.tokens.decode_token_file, {"path": str(other), "orig_name": "my ids.txt"})
    assert message.startswith("my ids.txt: ") and ".npy or .json" in message


def test_lm_sequence(app, photo):
    tokens = _reconstruct(app, str(photo)).tokens
    text, button = app.tokens.lm_sequence(tokens, 32000)
    saved = json.loads(open(button.value["path"]).read())
    assert saved["ids"] == lm_sequence(tokens.grid, 32000).tolist()
    lines = text.splitlines()
    assert len(lines) == 1 + 1 + 48 + 1 and lines[1] == str(saved["<img_start>"])
    assert lines[2].split()[-1] == str(saved["<img_newrow>"]) and len(lines[2].split()) == 49
    assert "0 or more" in _error(app.tokens.lm_sequence, tokens, -1)
    assert "first" in _error(app.tokens.lm_sequence, None, 32000)


def test_clicking_and_nudging_a_token(app, photo):
    levels = app.studio.config.levels
    tokens = _reconstruct(app, str(photo)).tokens
    edited = app.tokens.open_tokens(tokens, 24, 24).edited
    assert app.tokens.select_token(gr.SelectData(None, {"index": [305, 105], "value": None})) == (10, 30)
    row, col, tabs = inspect_token(gr.SelectData(None, {"index": [305, 105], "value": None}))
    assert (row, col) == (10, 30) and tabs.selected == "tokens"
    dim = next(d for d in range(5) if fsq.indices_to_digits(edited[24, 24], levels)[d] < levels[d] - 1)
    up = app.tokens.level_up(tokens, edited, 24, 24, dim)
    assert (up.edited != edited).sum() == 1 and up.edited[24, 24] - edited[24, 24] == fsq.basis(levels)[dim]
    assert "1 of 2,304 tokens edited" in up.token_info
    assert up.change_view[36:60, 36:60].max() > 0  # the decoder spreads the edit over the neighbourhood
    assert up.decoded_view == gr.skip() and up.token_files == gr.skip()  # left as they are
    back = app.tokens.level_down(tokens, up.edited, 24, 24, dim).edited
    np.testing.assert_array_equal(back, edited)
    top = edited.copy()
    top[0, 0] = 15359
    assert "levels 0..4" in _error(app.tokens.level_up, tokens, top, 0, 0, 4)


def test_the_events_that_read_or_write_the_edited_grid_take_turns_in_one_lane(app):
    """Opening a grid, outlining a token and moving a level all read or write the ``edited`` state:
    run side by side, a level moved while a grid opens could be lost or land on the old grid."""
    lanes = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in app.blocks.fns.values()}
    for name in ("reset_tokens", "show_token", "level_up", "level_down"):
        assert lanes[name] == ("tokens_view", 1), name


def test_dataset_tab(app, tmp_path):
    tab, config = app.dataset, app.studio.config
    tab.evaluate_dataset("worst first")  # the first opening starts the pass in the background
    assert app.studio.dataset.wait(120).stage == "done"
    view = tab.evaluate_dataset("worst first")
    assert view.sample_grid.shape[1] == 3 * 96 + 2 * 2 and "<b>3</b> images" in view.dataset_summary
    assert "SSIM mean" in view.dataset_summary and "worst or best of all 3 images" in view.dataset_summary
    codebook = app.studio.dataset.metrics.codebook(config)
    assert view.dataset_codebook.axes[0].get_title() == f"{codebook.codes_seen:,} of {config.codebook_size:,} codes used"
    assert [ax.get_title().split(":")[0] for ax in view.dataset_levels.axes] == [f"dim {k}" for k in range(5)]
    assert view.dataset_shown == "all" and view.dataset_poll.active is False  # done: the session stops polling
    psnr = app.studio.dataset.metrics.psnr
    assert list(app.studio.dataset.grid("best first").psnr) == sorted(psnr, reverse=True)
    assert tab.evaluate_dataset("worst first", "grid").sample_grid is not gr.skip()  # now the whole set's worst
    again = tab.evaluate_dataset("worst first", "all")  # a session that has it all is sent only the summary
    assert [v == gr.skip() for v in (again.sample_grid, again.dataset_codebook, again.dataset_levels)] == [True] * 3
    assert again.dataset_summary == view.dataset_summary
    assert "split" not in view.dataset_summary and "(split" not in app.studio.dataset.status().message  # a folder

    missing = DatasetPass(str(tmp_path / "absent"), "test", "sha", gpu.reconstruct_images)
    tab = DatasetTab(replace(app.studio, dataset=missing))
    tab.evaluate_dataset("file order")
    missing.wait(60)
    view = tab.evaluate_dataset("file order")
    assert view.sample_grid == gr.skip() and "no dataset" in view.dataset_summary
    assert "QKVAE_DATA" in view.dataset_summary and view.dataset_poll.active is False


def test_explore_tab_runs_a_batch_and_opens_an_image_in_the_reconstruct_tab(app, tmp_path):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("photo-cat", "ood-text"):
            z.write(EXAMPLES_DIR / f"{name}.png", f"set/{name}.png")
        z.writestr("set/broken.png", b"not an image")
    view = app.explore.explore_uploads([str(archive), str(EXAMPLES_DIR / "photo-coffee.png")], "resize", "PSNR")
    result = view.explored
    assert view.explore_table["name"].tolist() == ["set/ood-text.png", "set/photo-cat.png", "photo-coffee.png"]
    assert "<b>3</b> images reconstructed" in view.explore_summary and "set/broken.png" in view.explore_summary
    worst = result.worst("PSNR")
    assert [caption for _, caption in view.explore_gallery] == [
        f"{result.rows[i].psnr:.2f} dB · {result.rows[i].name}" for i in worst]  # the ranking value first
    assert view.explore_csv.value["path"].endswith(".csv") and view.explore_json.value["path"].endswith(".json")
    assert view.explore_csv.interactive and len(json.loads(open(view.explore_json.value["path"]).read())["images"]) == 3
    by_ood = app.explore.gallery(result, "OOD score")
    assert [c.split(" · ")[0] for _, c in by_ood] == [f"OOD {result.rows[i].ood_score:.2f}" for i in result.worst("OOD score")]
    assert app.explore.gallery(None, "PSNR") is None

    path, tabs = open_gallery_image(result, "PSNR", gr.SelectData(None, {"index": 0, "value": None}))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), result.originals[worst[0]])
    assert tabs.selected == "reconstruct" and path.endswith("/" + result.rows[worst[0]].name.split("/")[-1])
    row = view.explore_table.iloc[2].tolist()  # the row as the browser sends it, whatever the sort
    path, _ = open_table_row(result, gr.SelectData(None, {"index": [2, 1], "value": None, "row_value": row}))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), result.originals[2])
    opened = _reconstruct(app, path)
    assert opened.psnr == round(result.rows[2].psnr, 2)  # the same image, the same figures
    assert opened.tokens.name == "photo-coffee" and "photo-coffee.png" in opened.opened  # its own name


def test_explore_tab_explains_refused_uploads_and_clears_the_last_run(app, tmp_path):
    assert "Upload image files" in _error(app.explore.explore_uploads, [], "resize", "PSNR")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../evil.png", b"x")
    message = _error(app.explore.explore_uploads, [str(evil)], "resize", "PSNR")
    assert "no readable image" in message and "'../' path" in message
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "no readable image" in _error(app.explore.explore_uploads, [str(text)], "resize", "PSNR")
    cleared = app.explore.clear()
    assert cleared.explored is None and cleared.explore_table is None and cleared.explore_gallery is None
    assert not cleared.explore_csv.interactive and cleared.explore_csv.value is None


def test_the_app_starts_without_weights_and_says_so(app, other_settings, tmp_path, photo):
    bare = build_demo(Settings(weights=tmp_path / "missing"))
    assert bare.studio.model is None
    assert "No model loaded" in bare.studio.status and "missing" in bare.studio.status
    assert "No model is loaded" in _error(_reconstruct, bare, str(photo))
    endpoints = bare.blocks.get_api_info(all_endpoints=True)["named_endpoints"].keys()  # undocumented too
    assert endpoints >= {"/reconstruct", "/explore", "/tokenize_image"}


def test_a_reference_of_other_weights_is_refused_and_the_app_says_so(app, other_settings, weights_dir, photo):
    other = build_demo(Settings(weights=weights_dir, reference=REFERENCE_PATH))  # made with the shipped weights
    assert other.studio.reference is None and other.studio.thresholds is None
    assert "no OOD reference" in other.studio.status and "SHA-256" in other.studio.status
    view = _reconstruct(other, str(photo))
    assert view.ood_map is None and "Unavailable" in view.ood_panel  # no OOD map, and the panel says why
