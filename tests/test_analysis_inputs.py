"""analysis.inputs and analysis.ood_images: loading folders and STL-10 binaries, the built-in OOD set."""

import numpy as np
import pytest
from PIL import Image

from analysis.inputs import InputError, encode_images, load_fitted, reconstruct_images
from analysis.ood_images import ood_images


def write_stl10_bin(path, images: np.ndarray) -> None:
    """uint8 (N, 96, 96, 3) in STL-10's layout: N x 3 x 96 x 96, column-major per image."""
    images.transpose(0, 3, 2, 1).tofile(path)


def test_stl10_bin_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    write_stl10_bin(tmp_path / "test_X.bin", images)
    names, loaded = load_fitted(tmp_path / "test_X.bin")
    assert names == ["test_X_00000", "test_X_00001", "test_X_00002"]
    np.testing.assert_array_equal(loaded, images)


def test_limit_reads_only_the_first_images(tmp_path, rgb, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)
    write_stl10_bin(tmp_path / "test_X.bin", images)
    read = []
    real_fromfile = np.fromfile
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: read.append(k["count"]) or real_fromfile(*a, **k))
    names, loaded = load_fitted(tmp_path / "test_X.bin", limit=2)
    assert names == ["test_X_00000", "test_X_00001"] and read == [2 * 96 * 96 * 3]
    np.testing.assert_array_equal(loaded, images[:2])
    assert len(load_fitted(tmp_path / "test_X.bin", limit=50)[1]) == 5
    for name in ("c.png", "a.png", "b.png"):
        Image.fromarray(rgb).save(tmp_path / name)
    assert load_fitted(tmp_path, limit=2)[0] == ["a.png", "b.png"]


def test_folder_images_are_resized_to_96(tmp_path, rgb):
    Image.fromarray(np.repeat(rgb, 2, axis=1)).save(tmp_path / "b_wide.png")
    Image.fromarray(rgb).save(tmp_path / "a_square.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    names, loaded = load_fitted(tmp_path)
    assert names == ["a_square.jpg", "b_wide.png"]
    assert loaded.shape == (2, 96, 96, 3) and loaded.dtype == np.uint8


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("empty", "no images found"),
    ("short.bin", "not an STL-10 image file"),
    ("photo.npy", "neither an image folder nor an STL-10"),
])
def test_bad_sources_raise_input_error(tmp_path, case, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "short.bin").write_bytes(b"\0" * 100)
    (tmp_path / "photo.npy").write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match=message):
        load_fitted(tmp_path / case)


def test_batched_encoding_matches_one_call(model, rgb):
    images = np.stack([rgb, rgb[::-1], rgb[:, ::-1]])
    ids, recons = reconstruct_images(model, images, batch_size=2)
    assert ids.shape == (3, 2304) and recons.shape == (3, 96, 96, 3) and recons.dtype == np.uint8
    assert (encode_images(model, images, batch_size=3) == ids).mean() > 0.99
    assert encode_images(model, images[:0]).shape == (0, 2304)


def test_ood_images_are_deterministic_and_varied():
    names, images = ood_images()
    assert images.shape == (len(names), 96, 96, 3) and images.dtype == np.uint8
    categories = {n.split("__")[0] for n in names}
    assert {"text", "face", "diagram", "texture"} <= categories
    np.testing.assert_array_equal(ood_images()[1], images)
