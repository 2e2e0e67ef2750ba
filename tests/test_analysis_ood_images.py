"""analysis.ood_images: the built-in OOD benchmark's size, categories, determinism and look."""

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.ood_images import OODSet, ood_images

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("text", "diagram", "screenshot", "face", "texture", "noise_flat")
PHOTO_LIKE = ("zoomed_in", "tiled", "low_light", "noisy", "jpeg", "blurred")


def digest(oods: OODSet) -> str:
    h = hashlib.sha256("\n".join(oods.names).encode())
    h.update(np.ascontiguousarray(oods.images).tobytes())
    return h.hexdigest()


def mode_fraction(image: np.ndarray) -> float:
    """The share of pixels that have the image's most common colour (a flat background)."""
    _, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    return counts.max() / counts.sum()


def neighbour_difference(image: np.ndarray) -> float:
    """Mean absolute difference between horizontally adjacent pixels."""
    return float(np.abs(np.diff(image.astype(np.int16), axis=1)).mean())


@pytest.fixture(scope="module")
def oods() -> OODSet:
    return ood_images()


def test_at_least_150_images_in_six_categories_of_at_least_15(oods):
    counts = oods.counts()
    assert len(oods) == sum(counts.values()) >= 150
    assert all(counts.get(c, 0) >= 15 for c in REQUIRED), counts


def test_images_are_read_only_uint8_squares(oods):
    assert oods.images.shape == (len(oods), 96, 96, 3) and oods.images.dtype == np.uint8
    with pytest.raises(ValueError):
        oods.images[0, 0, 0, 0] = 1
    assert ood_images(64).images.shape == (len(oods), 64, 64, 3)


def test_names_are_unique_and_carry_their_category(oods):
    assert len(set(oods.names)) == len(oods.names)
    for name, category in zip(oods.names, oods.categories, strict=True):
        assert name.startswith(f"{category}__") and len(name) > len(category) + 2


def test_no_two_images_are_identical(oods):
    assert len({im.tobytes() for im in oods.images}) == len(oods)


def test_select_keeps_one_category(oods):
    faces = oods.select("face")
    assert len(faces) == oods.counts()["face"] and set(faces.categories) == {"face"}
    i = oods.names.index(faces.names[0])
    np.testing.assert_array_equal(faces.images[0], oods.images[i])
    with pytest.raises(ValueError, match="no OOD category 'cats'"):
        oods.select("cats")


def test_regenerating_is_byte_identical_in_this_and_another_process(oods, monkeypatch):
    """Seeds come from names (not ``hash``, which differs per process); nothing is downloaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("the OOD set tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    ood_images.cache_clear()
    assert digest(ood_images()) == digest(oods)
    code = ("import hashlib, numpy as np; from analysis.ood_images import ood_images; s = ood_images(); "
            "h = hashlib.sha256('\\n'.join(s.names).encode()); h.update(s.images.tobytes()); print(h.hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=ROOT)
    assert other.stdout.strip() == digest(oods)


def test_drawn_categories_have_flat_backgrounds_and_faces_do_not(oods):
    for category in ("text", "diagram", "screenshot"):
        fractions = [mode_fraction(im) for im in oods.select(category).images]
        assert np.median(fractions) > 0.4, category
    assert max(mode_fraction(im) for im in oods.select("face").images) < 0.1


def test_noise_flat_holds_both_extremes_and_textures_sit_between(oods):
    noise = np.array([neighbour_difference(im) for im in oods.select("noise_flat").images])
    assert (noise < 3).sum() >= 8 and (noise > 20).sum() >= 6
    textures = np.array([neighbour_difference(im) for im in oods.select("texture").images])
    assert 3 < np.median(textures) < 20
    assert np.mean([im.std() for im in oods.select("noise_flat").images if neighbour_difference(im) > 20]) > 30


def test_photo_like_categories_hold_the_cards_scales_and_damaged_photos(oods):
    counts = oods.counts()
    assert all(counts.get(c, 0) >= 12 for c in PHOTO_LIKE), counts
    for image in oods.select("tiled").images:  # a tile repeats: 2, 3 or 4 tiles across 96 px
        assert any(np.array_equal(image[:96 - t, :96 - t], image[t:, t:]) for t in (48, 32, 24))
    zoomed = [neighbour_difference(im) for im in oods.select("zoomed_in").images]
    tiled = [neighbour_difference(im) for im in oods.select("tiled").images]
    assert np.median(zoomed) < np.median(tiled)  # enlarged structures are smoother than shrunk ones
    clean = {n.split("__")[1].rsplit("_", 1)[0]: im for n, im in zip(oods.names, oods.images, strict=True)
             if n.startswith("blurred__") and n.endswith("_s1")}
    for name, image in zip(oods.names, oods.images, strict=True):
        photo = name.split("__")[1].rsplit("_", 1)[0]
        if name.startswith("low_light__"):
            assert image.mean() < 0.6 * clean[photo].mean()
        if name.startswith("noisy__"):
            assert neighbour_difference(image) > neighbour_difference(clean[photo])
