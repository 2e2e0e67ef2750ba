"""How strongly a frontal-face detector fires on an image: scikit-image's bundled LBP cascade.

The card names faces among the tokenizer's failure cases, and STL-10 has no people; no statistic
of pixels or tokens tells a portrait from a photo of a dog (both were at chance, assets/MODEL_CARD.md,
"OOD score"). A face detector does. ``face_windows`` counts the cascade's raw detections, every
window it accepts before merging overlapping ones: a face accepts many windows around it at
several sizes, a photo without one a few stray ones at most. The count, not a yes/no, is what
``analysis.ood`` calibrates on photos. A face that fills the frame needs a window larger than
the image, so the image is searched twice: as it is, and shrunk to ``SHRUNK`` of its side in a
canvas of its mean grey. The cascade ships with scikit-image (nothing is downloaded); one is
loaded per thread, since the app scores images from several.
"""

import threading

import numpy as np
import skimage.data
import skimage.feature
from skimage.color import rgb2gray
from skimage.transform import resize

MIN_FACE = 20  # pixels: the smallest window searched, a fifth of a 96-pixel image
SCALE_STEP = 1.15  # each window size is this many times the last
STEP_RATIO = 2.0  # the sliding step, in units of the window's scale (1 is exhaustive and 3x slower)
NO_MERGE = 1.01  # an intersection score no two windows reach: every accepted window is returned
SHRUNK = 2 / 3  # the second search's image side, as a share of the canvas: close-ups' faces fit

_local = threading.local()


def _cascade() -> skimage.feature.Cascade:
    if not hasattr(_local, "cascade"):
        _local.cascade = skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    return _local.cascade


def _windows(grey: np.ndarray) -> int:
    side = min(grey.shape)
    if side < MIN_FACE:
        return 0
    return len(_cascade().detect_multi_scale(grey, scale_factor=SCALE_STEP, step_ratio=STEP_RATIO,
                                             min_size=(MIN_FACE, MIN_FACE), max_size=(side, side),
                                             min_neighbor_number=1, intersection_score_threshold=NO_MERGE))


def shrunk(grey: np.ndarray) -> np.ndarray:
    """``grey`` shrunk to ``SHRUNK`` of its size (antialiased), centred in a canvas of its mean."""
    h, w = grey.shape
    small = resize(grey, (round(h * SHRUNK), round(w * SHRUNK)), anti_aliasing=True)
    canvas = np.full_like(grey, grey.mean())
    top, left = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


def face_windows(rgb: np.ndarray) -> int:
    """The number of windows, from ``MIN_FACE`` pixels to the image's shorter side, that the
    frontal-face cascade accepts in a uint8 (H, W, 3) image, as it is and ``shrunk``."""
    grey = rgb2gray(np.asarray(rgb, dtype=np.uint8))
    return _windows(grey) + _windows(shrunk(grey))
