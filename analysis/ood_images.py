"""A built-in set of out-of-distribution images, made in memory at 96x96.

Text, faces, diagrams, textures and scientific images from ``skimage.data`` (only the ones
bundled with scikit-image, so nothing is downloaded; random blobs seeded), plus two made
here: a box-and-arrow diagram and seeded uniform noise. Names follow the STL-10 samples' ``<category>__<name>``.
Every image is fit with mode "resize", the same preprocessing as inference.
"""

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from qkvae.image import fit, open_rgb

SKIMAGE_IMAGES = {
    "text": ("text", "page"),
    "face": ("astronaut", "camera"),
    "diagram": ("checkerboard", "horse", "logo", "colorwheel", "shepp_logan_phantom"),
    "texture": ("brick", "grass", "gravel", "moon"),
    "science": ("cell", "immunohistochemistry", "hubble_deep_field"),
}
SEED = 0  # for the noise and the random blobs


def drawn_diagram(size: int = 96) -> np.ndarray:
    """A flowchart: three labelled boxes joined by arrows, black on white."""
    im = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(im)
    boxes = [(6, 8, 42, 30), (54, 8, 90, 30), (30, 62, 66, 84)]
    for (x0, y0, x1, y1), label in zip(boxes, ("in", "enc", "out"), strict=True):
        draw.rectangle((x0, y0, x1, y1), outline="black", width=2)
        draw.text((x0 + 6, y0 + 6), label, fill="black")
    draw.line((42, 19, 54, 19), fill="black", width=2)
    draw.line((72, 30, 56, 62), fill="black", width=2)
    draw.polygon([(54, 19), (48, 15), (48, 23)], fill="black")  # arrowhead
    return np.asarray(im)


def noise(size: int = 96) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, 256, (size, size, 3), dtype=np.uint8)


def ood_images(size: int = 96) -> tuple[list[str], np.ndarray]:
    """Names and uint8 (N, size, size, 3) out-of-distribution images."""
    sources = {
        f"{category}__{name}": getattr(skimage.data, name)()
        for category, names in SKIMAGE_IMAGES.items()
        for name in names
    }
    sources["diagram__binary_blobs"] = skimage.data.binary_blobs(rng=SEED)
    sources["diagram__flowchart"] = drawn_diagram(size)
    sources["noise__uniform"] = noise(size)
    images = [np.asarray(fit(open_rgb(a), size, "resize")) for a in sources.values()]
    return list(sources), np.stack(images)
