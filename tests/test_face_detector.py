"""analysis.face_detector: the cascade fires on faces, close-ups included, hardly on photos without one."""

import numpy as np
import skimage.data

from skimage.color import rgb2gray

from analysis.face_detector import MIN_FACE, SHRUNK, _windows, face_windows, shrunk
from analysis.ood_images.faces import ASTRONAUT_FACE, crop
from qkvae.image import fit_rgb


def test_a_face_accepts_many_windows_and_a_cat_or_a_flat_image_few():
    face = fit_rgb(crop(skimage.data.astronaut(), ASTRONAUT_FACE, 100), 96, "resize")
    cat = fit_rgb(skimage.data.chelsea(), 96, "resize")
    flat = np.full((96, 96, 3), 128, np.uint8)
    assert face_windows(face) >= 4
    assert face_windows(cat) <= 2
    assert face_windows(flat) == 0
    assert face_windows(face[::-1]) < face_windows(face)  # frontal and upright: upside down it hardly fires


def test_a_face_filling_the_frame_is_found_in_the_shrunk_search():
    close_up = fit_rgb(crop(skimage.data.astronaut(), ASTRONAUT_FACE, 60), 96, "resize")
    grey = rgb2gray(close_up)
    assert _windows(grey) <= 1 < 3 <= face_windows(close_up)  # as it is, hardly; shrunk, it fits


def test_shrunk_keeps_the_size_and_centres_the_image_on_its_mean():
    grey = np.random.default_rng(0).random((96, 96))
    canvas = shrunk(grey)
    assert canvas.shape == grey.shape
    assert canvas[0, 0] == canvas[-1, -1] == grey.mean()
    inner = round(96 * SHRUNK)
    assert canvas[16:16 + inner, 16:16 + inner].std() > 0.05


def test_an_image_smaller_than_the_smallest_face_has_none():
    assert face_windows(np.zeros((MIN_FACE - 1, 64, 3), np.uint8)) == 0
