"""The app's helpers without a server: token surgery, settings, dataset ranking, served files."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import QKVAEConfig, SourceError, load_tokens
from qkvae import fsq
from qkvae_app import dataset, files, settings
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


def test_settings_default_data_is_anchored_to_the_repo(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = settings.Settings.from_env({})
    assert s.data == settings.REPO_ROOT.parent / "shared" / "data" / "stl10-samples"
    assert s.weights is None
    assert settings.Settings.from_env({"QKVAE_DATA": "d"}).data == tmp_path / "d"


def test_load_model_reports_missing_weights(tmp_path, weights_dir):
    model, why = settings.load_model(settings.Settings(weights=tmp_path / "nothing.safetensors"))
    assert model is None and "nothing.safetensors" in why
    model, why = settings.load_model(settings.Settings(weights=weights_dir))
    assert why is None and model.weights_path.parent == weights_dir


def test_dataset_missing_folder_says_where_to_put_data(model, tmp_path):
    with pytest.raises(SourceError, match="QKVAE_DATA"):
        dataset.reconstruct_dataset(model, tmp_path / "absent")


def test_dataset_evaluate_and_rank(model, tmp_path, rgb):
    for k in range(3):
        Image.fromarray(np.roll(rgb, 20 * k, axis=1)).save(tmp_path / f"img{k}.png")
    Image.fromarray(rgb).resize((150, 120)).save(tmp_path / "big.png")  # fitted to 96x96
    (tmp_path / "broken.png").write_bytes(b"not a png")  # reported, not fatal
    result = dataset.reconstruct_dataset(model, tmp_path)
    images = result.images
    assert images.originals.shape == images.reconstructions.shape == (4, 96, 96, 3)
    assert images.psnr.shape == (4,) and result.codebook.num_images == 4
    assert [s.name for s in images.skipped] == ["broken.png"]
    worst = dataset.ranked(result, "worst first", count=3)
    assert len(worst) == 3 and np.all(np.diff(images.psnr[worst]) >= 0)
    assert list(dataset.ranked(result, "best first")) == list(np.argsort(images.psnr, kind="stable")[::-1])
    assert list(dataset.ranked(result, "file order")) == [0, 1, 2, 3]


def test_dataset_reads_an_stl10_binary_folder(model, tmp_path, rgb):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    images = np.stack([rgb, rgb[::-1]])  # (2, 96, 96, 3)
    images.transpose(0, 3, 2, 1).tofile(folder / "test_X.bin")  # STL-10 stores images column-major
    result = dataset.reconstruct_dataset(model, folder)
    assert result.source.endswith("test_X.bin")
    np.testing.assert_array_equal(result.images.originals, images)


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


def test_png_file_is_written_once_per_content_and_old_ones_expire(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "PNG_DIR", tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    path = files.png_file(image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    first = os.stat(path)
    os.utime(path, (0, 0))
    assert files.png_file(image.copy()) == path  # same pixels: the same file, not rewritten,
    assert os.stat(path).st_ino == first.st_ino and os.stat(path).st_mtime > 0  # but fresh again
    other = files.png_file(255 - image)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([Path(path).name, Path(other).name])
    os.utime(path, (0, 0))  # an hour-old file goes when a new one is written
    files.png_file(np.zeros_like(image))
    assert not Path(path).exists() and Path(other).exists()


def test_served_image_gives_gradio_a_file_and_keeps_its_cached_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "PNG_DIR", tmp_path / "png")
    view = ServedImage(format="png", interactive=False)
    view.GRADIO_CACHE = str(tmp_path / "cache")
    image = np.zeros((48, 48, 3), dtype=np.uint8)
    first = view.postprocess(image)
    np.testing.assert_array_equal(np.asarray(Image.open(first.path)), image)
    assert Path(first.path).parent == tmp_path / "png"  # a path, which Gradio copies by rename
    assert view.postprocess(image).path == first.path
    assert view.postprocess(None) is None
