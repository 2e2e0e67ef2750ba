"""How strongly a frontal-face detector fires on an image: scikit-image's bundled LBP cascade.

The card names faces among the tokenizer's failure cases, and STL-10 has no people; no statistic
of pixels or tokens tells a portrait from a photo of a dog (both were at chance, assets/MODEL_CARD.md,
"OOD score"). A face detector does. ``face_windows`` counts the cascade's raw detections, every
window it accepts before merging overlapping ones: a face accepts many windows around it at
several sizes, a photo without one a few stray ones at most. The count, not a yes/no, is what
``analysis.ood`` calibrates on photos. The cascade ships with scikit-image (nothing is
downloaded); one is loaded per thread, since the app scores images from several.
"""

import threading

import numpy as np
import skimage.data
import skimage.feature
from skimage.color import rgb2gray

MIN_FACE = 20  # pixels: the smallest window searched, a face a fifth of a 96-pixel image
SCALE_STEP = 1.15  # each window size is this many times the last
STEP_RATIO = 1.5  # the sliding step, in units of the window's scale (1 is exhaustive, 3.4 ms against 8.5 ms at 96x96)
NO_MERGE = 1.01  # an intersection score no two windows reach: every accepted window is returned

_local = threading.local()


def _cascade() -> skimage.feature.Cascade:
    if not hasattr(_local, "cascade"):
        _local.cascade = skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    return _local.cascade


def face_windows(rgb: np.ndarray) -> int:
    """The number of windows, from ``MIN_FACE`` pixels to the image's shorter side, that the
    frontal-face cascade accepts in a uint8 (H, W, 3) image."""
    side = min(rgb.shape[:2])
    if side < MIN_FACE:
        return 0
    windows = _cascade().detect_multi_scale(rgb2gray(np.asarray(rgb, dtype=np.uint8)), scale_factor=SCALE_STEP,
                                            step_ratio=STEP_RATIO, min_size=(MIN_FACE, MIN_FACE),
                                            max_size=(side, side), min_neighbor_number=1,
                                            intersection_score_threshold=NO_MERGE)
    return len(windows)
