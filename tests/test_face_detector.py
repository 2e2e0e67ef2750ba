"""analysis.face_detector: the cascade fires on faces, hardly on photos without one, never on flat images."""

import numpy as np
import skimage.data

from analysis.face_detector import MIN_FACE, face_windows
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


def test_an_image_smaller_than_the_smallest_face_has_none():
    assert face_windows(np.zeros((MIN_FACE - 1, 64, 3), np.uint8)) == 0
