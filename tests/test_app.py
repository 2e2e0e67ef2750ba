"""The app's handlers called as plain functions: outputs, token tools, dataset tab, and bad inputs.

``app`` loads its model and reference at import, so it is imported once here with the seeded
test weights, their OOD reference (conftest) and a three-image dataset named in the environment.
"""

import importlib
import importlib.util
import json
import shutil
import sys
import zipfile
from html import escape

import gradio as gr
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from analysis import plots
from analysis.reference import REFERENCE_PATH
from qkvae.metrics import psnr, ssim
from qkvae import fsq, load_image, load_tokens
from qkvae.image import to_uint8
from qkvae.tokens import lm_sequence
from qkvae_app.settings import EXAMPLES_DIR, REPO_ROOT, Settings


@pytest.fixture(scope="module")
def app(weights_dir, ood_reference_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    data = root / "data"
    data.mkdir()
    for name in ("photo-cat", "photo-coffee", "ood-text"):
        shutil.copy(EXAMPLES_DIR / f"{name}.png", data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QKVAE_WEIGHTS", str(weights_dir))
        mp.setenv("QKVAE_REFERENCE", str(ood_reference_path))
        mp.setenv("QKVAE_DATA", str(data))
        sys.modules.pop("app", None)
        yield importlib.import_module("app")
    sys.modules.pop("app", None)


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
    (model_input, reconstruction, jpeg, p, s, token_map, error_map, ood_map, ood, rate, codebook,
     *levels, tokens) = app.reconstruct(str(photo), "resize")
    x = load_image(photo, mode="resize")
    expected = to_uint8(model.decode(model.encode(x[None]))[0])
    np.testing.assert_array_equal(model_input, to_uint8(x))
    np.testing.assert_array_equal(reconstruction, expected)
    assert jpeg.shape == (96, 96, 3)
    assert p == round(psnr(model_input, expected), 2) and s == round(ssim(model_input, expected), 4)
    assert type(p) is float and type(s) is float  # numpy scalars reach API clients as strings
    assert token_map.shape == error_map.shape == ood_map.shape == (480, 480, 3)  # 10 pixels a token
    np.testing.assert_array_equal(token_map[::10, ::10], plots.token_heatmap(tokens["grid"], 15360))
    score = app.REFERENCE.score(model_input, tokens["grid"])
    np.testing.assert_array_equal(ood_map[::10, ::10],
                                  plots.ood_map_heatmap(app.REFERENCE.token_map(model_input, tokens["grid"])))
    assert score.verdict.label in ood and escape(score.verdict.explanation) in ood and f"{score.score:.2f}" in ood
    assert "32,041" in rate
    assert codebook.value["data"] and [len(f) for f in levels] == [8, 8, 8, 6, 5]
    assert tokens["grid"].shape == (48, 48) and tokens["name"] == "wide"
    np.testing.assert_array_equal(tokens["grid"].ravel(), model.encode(x[None])[0].numpy())


def test_reconstruct_takes_gradio_file_payloads_and_modes(app, photo):
    by_path = app.reconstruct(str(photo), "resize")
    by_payload = app.reconstruct({"path": str(photo), "orig_name": "wide.png"}, "resize")
    np.testing.assert_array_equal(by_path[1], by_payload[1])
    padded = app.reconstruct(str(photo), "pad")[0]
    cropped = app.reconstruct(str(photo), "center_crop")[0]
    assert (padded[0] == 128).all() and not (cropped[0] == 128).all()  # grey bars above and below


def test_cleared_input_clears_outputs(app):
    assert all(v is None for v in app.reconstruct(None, "resize"))


def test_bad_inputs_explain_and_the_app_keeps_serving(app, tmp_path, photo):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[:400])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"
    Image.new("1", (8000, 6000)).save(huge)  # 48 Mpixel, a small file
    assert "not an image" in _error(app.reconstruct, str(text), "resize")
    assert "corrupt or truncated" in _error(app.reconstruct, str(truncated), "resize")
    assert "empty" in _error(app.reconstruct, str(empty), "resize")
    assert "limit" in _error(app.reconstruct, str(huge), "resize")
    assert "mode" in _error(app.reconstruct, str(photo), "stretch")
    assert app.reconstruct(str(photo), "resize")[3] > 0


def test_token_files_and_decoding_round_trip(app, photo, tmp_path, model):
    tokens = app.reconstruct(str(photo), "resize")[-1]
    edited, view, decoded, edited_view, change, info, paths = app.open_tokens(tokens, 3, 4)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["wide-tokens.npy", "wide-tokens.json"]
    for path in paths:
        np.testing.assert_array_equal(load_tokens(path), tokens["grid"])
    assert view.shape == (480, 480, 3) and "row 3, column 4" in info
    assert (change == change[0, 0]).all()  # nothing edited yet: a uniform map
    again = app.decode_token_file(paths[1])
    np.testing.assert_array_equal(again["grid"], tokens["grid"])
    np.testing.assert_array_equal(again["decoded"], tokens["decoded"])
    assert again["name"] == "wide"


def test_wrong_token_files_explain(app, tmp_path):
    short = tmp_path / "short.json"
    short.write_text(json.dumps(list(range(100))))
    big = tmp_path / "big.npy"
    np.save(big, np.full(2304, 15360))
    other = tmp_path / "ids.txt"
    other.write_text("1 2 3")
    assert "expected 2304" in _error(app.decode_token_file, str(short))
    assert "0..15359" in _error(app.decode_token_file, str(big))
    assert ".npy or .json" in _error(app.decode_token_file, str(other))


def test_lm_sequence(app, photo):
    tokens = app.reconstruct(str(photo), "resize")[-1]
    text, button = app.lm_sequence(tokens, 32000)
    saved = json.loads(open(button.value["path"]).read())
    assert saved["ids"] == lm_sequence(tokens["grid"], 32000).tolist()
    lines = text.splitlines()
    assert len(lines) == 1 + 1 + 48 + 1 and lines[1] == str(saved["<img_start>"])
    assert lines[2].split()[-1] == str(saved["<img_newrow>"]) and len(lines[2].split()) == 49
    assert "0 or more" in _error(app.lm_sequence, tokens, -1)
    assert "first" in _error(app.lm_sequence, None, 32000)


def test_clicking_and_nudging_a_token(app, photo):
    tokens = app.reconstruct(str(photo), "resize")[-1]
    edited = app.open_tokens(tokens, 24, 24)[0]
    assert app.select_token(gr.SelectData(None, {"index": [305, 105], "value": None})) == (10, 30)
    row, col, tabs = app.inspect_token(gr.SelectData(None, {"index": [305, 105], "value": None}))
    assert (row, col) == (10, 30) and tabs.selected == "tokens"
    dim = next(d for d in range(5) if fsq.indices_to_digits(edited[24, 24], app.CONFIG.levels)[d] < app.CONFIG.levels[d] - 1)
    new, decoded, change, view, info = app.level_up(tokens, edited, 24, 24, dim)
    assert (new != edited).sum() == 1 and new[24, 24] - edited[24, 24] == fsq.basis(app.CONFIG.levels)[dim]
    assert "1 of 2,304 tokens edited" in info
    assert change[36:60, 36:60].max() > 0  # the decoder spreads the edit over the neighbourhood
    back = app.level_down(tokens, new, 24, 24, dim)[0]
    np.testing.assert_array_equal(back, edited)
    top = edited.copy()
    top[0, 0] = 15359
    assert "levels 0..4" in _error(app.level_up, tokens, top, 0, 0, 4)


def test_dataset_tab(app, monkeypatch, tmp_path):
    app.evaluate_dataset("worst first")  # the first opening starts the pass in the background
    assert app.DATASET.wait(120).stage == "done"
    grid, summary, codebook, levels, shown, poll = app.evaluate_dataset("worst first")
    assert grid.shape[1] == 3 * 96 + 2 * 2 and "<b>3</b> images" in summary and "SSIM mean" in summary
    assert isinstance(codebook, Figure) and isinstance(levels, Figure)
    assert shown == "all" and poll.active is False  # done: the session stops polling
    assert app.dataset_grid("best first").shape == grid.shape
    assert app.evaluate_dataset("worst first", "grid")[0] == gr.skip()  # a session with the grid gets the charts
    again = app.evaluate_dataset("worst first", "all")  # a session that has it all is sent only the summary
    assert [again[i] == gr.skip() for i in (0, 2, 3)] == [True] * 3 and again[1] == summary

    missing = app.dataset.DatasetPass(str(tmp_path / "absent"), "test", "sha", app.gpu.reconstruct_images)
    monkeypatch.setattr(app, "DATASET", missing)
    app.evaluate_dataset("file order")
    missing.wait(60)
    grid, summary, *_, poll = app.evaluate_dataset("file order")
    assert grid == gr.skip() and "no dataset" in summary and "QKVAE_DATA" in summary and poll.active is False


def test_explore_tab_runs_a_batch_and_opens_an_image_in_the_reconstruct_tab(app, tmp_path):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("photo-cat", "ood-text"):
            z.write(EXAMPLES_DIR / f"{name}.png", f"set/{name}.png")
        z.writestr("set/broken.png", b"not an image")
    result, summary, table, gallery, csv_button, json_button = app.explore_uploads(
        [str(archive), str(EXAMPLES_DIR / "photo-coffee.png")], "resize", "PSNR")
    assert table["name"].tolist() == ["set/ood-text.png", "set/photo-cat.png", "photo-coffee.png"]
    assert "<b>3</b> images reconstructed" in summary and "set/broken.png" in summary
    assert [caption.split(" · ")[0] for _, caption in gallery] == [result.rows[i].name for i in result.worst("PSNR")]
    assert csv_button.value["path"].endswith(".csv") and json_button.value["path"].endswith(".json")
    assert csv_button.interactive and len(json.loads(open(json_button.value["path"]).read())["images"]) == 3
    assert len(app.explore_gallery(result, "OOD score")) == 3 and app.explore_gallery(None, "PSNR") is None

    first = result.worst("PSNR")[0]
    path, tabs = app.open_gallery_image(result, "PSNR", gr.SelectData(None, {"index": 0, "value": None}))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), result.originals[first])
    assert tabs.selected == "reconstruct"
    row = table.iloc[2].tolist()  # the row as the browser sends it, whatever the sort
    path, _ = app.open_table_row(result, gr.SelectData(None, {"index": [2, 1], "value": None, "row_value": row}))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), result.originals[2])
    assert app.reconstruct(path, "resize")[3] == round(result.rows[2].psnr, 2)  # the same image, the same figures


def test_explore_tab_explains_refused_uploads(app, tmp_path):
    assert "Upload image files" in _error(app.explore_uploads, [], "resize", "PSNR")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../evil.png", b"x")
    assert "'../evil.png' has an absolute or '../' path" in _error(app.explore_uploads, [str(evil)], "resize", "PSNR")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "could be decoded" in _error(app.explore_uploads, [str(text)], "resize", "PSNR")


def test_the_app_starts_without_weights_and_says_so(app, monkeypatch, tmp_path, photo):
    monkeypatch.setenv("QKVAE_WEIGHTS", str(tmp_path / "missing"))
    spec = importlib.util.spec_from_file_location("app_without_weights", REPO_ROOT / "app.py")
    bare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bare)
    assert bare.MODEL is None and "No model loaded" in bare.STATUS and "missing" in bare.STATUS
    assert "No model is loaded" in _error(bare.reconstruct, str(photo), "resize")


def test_a_reference_of_other_weights_is_refused_and_the_app_says_so(app, monkeypatch, photo):
    monkeypatch.setenv("QKVAE_REFERENCE", str(REFERENCE_PATH))  # made with the shipped weights, not the test ones
    spec = importlib.util.spec_from_file_location("app_other_reference", REPO_ROOT / "app.py")
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    assert other.REFERENCE is None and other.THRESHOLDS is None
    assert "no OOD reference" in other.STATUS and "SHA-256" in other.STATUS
    outputs = other.reconstruct(str(photo), "resize")
    assert outputs[7] is None and "Unavailable" in outputs[8]  # no OOD map, and the panel says why
