"""The app's helpers without a server: token surgery, settings, served files."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qkvae import QKVAEConfig, load_tokens
from qkvae import fsq
from qkvae_app import files, settings
from qkvae_app.components import ServedImage
from qkvae_app.edit import nudge_token

LEVELS = QKVAEConfig().levels


@pytest.mark.parametrize("dim", range(len(LEVELS)))
def test_nudge_moves_one_dimension_by_one_level(dim):
    grid = np.full((48, 48), 4321, dtype=np.int64)
    out = nudge_token(grid, 5, 7, dim, -1, LEVELS)
    before, after = fsq.indices_to_digits(grid[5, 7], LEVELS), fsq.indices_to_digits(out[5, 7], LEVELS)
    assert [a - b for a, b in zip(after, before, strict=True)] == [-1 if d == dim else 0 for d in range(len(LEVELS))]
    assert (out != grid).sum() == 1 and grid[5, 7] == 4321  # the input is not modified


def test_nudge_refuses_to_leave_the_grid():
    top = np.full((48, 48), 15359, dtype=np.int64)  # every dimension at its highest level
    with pytest.raises(ValueError, match="levels 0..4"):
        nudge_token(top, 0, 0, 4, +1, LEVELS)
    with pytest.raises(ValueError, match="outside"):
        nudge_token(top, 48, 0, 0, -1, LEVELS)
    with pytest.raises(ValueError, match="dimension"):
        nudge_token(top, 0, 0, 5, -1, LEVELS)


def test_settings_defaults_and_locations(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = settings.Settings.from_env({})
    assert s.data == settings.DEFAULT_DATA and s.data.startswith("hf://datasets/tanganke/stl10@")
    assert s.data_split == "test" and s.weights is None
    assert settings.Settings.from_env({"QKVAE_DATA": "d"}).data == tmp_path / "d"  # from the current directory
    hub = settings.Settings.from_env({"QKVAE_DATA": "hf://datasets/a/b@v1", "QKVAE_DATA_SPLIT": "train",
                                      "QKVAE_WEIGHTS": "hf://Glint-Research/QKVAE-1m"})
    assert (hub.data, hub.data_split, hub.weights) == ("hf://datasets/a/b@v1", "train", "hf://Glint-Research/QKVAE-1m")


def test_load_model_reports_missing_weights(tmp_path, weights_dir):
    model, why = settings.load_model(settings.Settings(weights=tmp_path / "nothing.safetensors"))
    assert model is None and "nothing.safetensors" in why
    model, why = settings.load_model(settings.Settings(weights=weights_dir))
    assert why is None and model.weights_file.path.parent == weights_dir


def test_token_and_lm_files_round_trip(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "OUT_DIR", tmp_path)
    grid = np.arange(2304, dtype=np.int64).reshape(48, 48)
    npy, js = files.token_files(grid, "cat")
    for path in (npy, js):
        np.testing.assert_array_equal(load_tokens(path), grid)
    seq, path = files.lm_file(grid, 1000, "cat")
    saved = json.loads(open(path).read())
    assert saved["ids"] == seq.tolist() and len(seq) == 1 + 48 * 49 + 1
    assert saved["code_offset"] == 1000 and seq[1] == 1000


def test_png_file_is_written_once_per_content(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "OUT_DIR", tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    path = files.png_file(image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    first = os.stat(path)
    os.utime(path, (0, 0))
    assert files.png_file(image.copy()) == path  # same pixels: the same file, not rewritten,
    assert os.stat(path).st_ino == first.st_ino and os.stat(path).st_mtime > 0  # but fresh again
    other = files.png_file(255 - image)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted([Path(path).name, Path(other).name])


def test_served_image_gives_gradio_a_file_and_keeps_its_cached_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "OUT_DIR", tmp_path)
    view = ServedImage(format="png", interactive=False)
    view.GRADIO_CACHE = str(tmp_path / "cache")
    image = np.zeros((48, 48, 3), dtype=np.uint8)
    first = view.postprocess(image)
    np.testing.assert_array_equal(np.asarray(Image.open(first.path)), image)
    assert Path(first.path).parent == tmp_path / "png"  # a path, which Gradio copies by rename
    assert view.postprocess(image).path == first.path
    assert view.postprocess(None) is None
