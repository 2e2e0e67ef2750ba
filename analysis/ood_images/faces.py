"""Faces from the images bundled with scikit-image (nothing is downloaded).

The astronaut's and the cameraman's faces cropped at several scales, mirrored and in grey,
and faces from the bundled Labeled Faces in the Wild subset (25x25 grey, its first 100
entries are faces).
"""

import numpy as np
import skimage.data

ASTRONAUT_FACE = (110, 228)  # (row, column) of the face centre in the 512x512 image
CAMERAMAN_FACE = (125, 210)
LFW_FACES = range(0, 100, 8)  # 13 of the subset's 100 faces


def crop(image: np.ndarray, centre: tuple[int, int], half: int) -> np.ndarray:
    r, c = centre
    return image[max(0, r - half): r + half, max(0, c - half): c + half]


def images() -> dict[str, np.ndarray]:
    astronaut, camera = skimage.data.astronaut(), skimage.data.camera()
    out = {f"astronaut_{half}": crop(astronaut, ASTRONAUT_FACE, half) for half in (70, 100, 150)}
    out["astronaut_mirrored"] = crop(astronaut, ASTRONAUT_FACE, 85)[:, ::-1]
    out["astronaut_grey"] = crop(astronaut, ASTRONAUT_FACE, 85).mean(axis=-1).astype(np.uint8)
    out.update({f"cameraman_{half}": crop(camera, CAMERAMAN_FACE, half) for half in (55, 90)})
    lfw = skimage.data.lfw_subset()
    out.update({f"lfw_{i:03d}": lfw[i] for i in LFW_FACES})
    return out
