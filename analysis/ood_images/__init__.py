"""A built-in benchmark of out-of-distribution images, all made offline and deterministically.

Thirteen categories. Seven far from photos, one module each: ``text`` (rendered prose, code, numbers and headlines in
the fonts shipped with matplotlib and Pillow, plus scikit-image's two scans), ``diagram``
(matplotlib charts, a flowchart, a table, a graph), ``screenshot`` (UI layouts drawn with
Pillow), ``face`` (scikit-image's bundled faces, cropped), ``texture`` (synthetic patterns and
scikit-image texture photos), ``noise_flat`` (noise, flat colours, gradients) and ``science``
(scikit-image's microscopy and astronomy images). Six photo-like ones from ``photos``: the
card's "very large structures" (``zoomed_in``, enlarged crops) and "very small structures"
(``tiled``, shrunk and tiled photos), and scikit-image's photos in ``low_light``, ``noisy``,
``jpeg`` and ``blurred`` versions. Randomness is seeded by image name; nothing
is downloaded. Names are ``<category>__<name>``; every image is fit with mode "resize", the
preprocessing of inference.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from analysis.ood_images import diagrams, faces, noise, photos, science, screens, text, textures
from qkvae.image import fit_rgb, open_rgb


@dataclass(frozen=True)
class OODSet:
    names: list[str]  # "<category>__<name>", unique
    categories: list[str]  # the category of each image
    images: np.ndarray  # uint8 (N, size, size, 3), read-only

    def __len__(self) -> int:
        return len(self.names)

    def counts(self) -> dict[str, int]:
        """Images per category, in the set's order."""
        return {c: self.categories.count(c) for c in dict.fromkeys(self.categories)}

    def select(self, category: str) -> "OODSet":
        """The images of one category."""
        if category not in self.categories:
            raise ValueError(f"no OOD category {category!r}; the set has {', '.join(self.counts())}")
        keep = [i for i, c in enumerate(self.categories) if c == category]
        return OODSet([self.names[i] for i in keep], [category] * len(keep), self.images[keep])


def sources(size: int) -> dict[str, dict]:
    """Each category's raw images (any size, arrays or PIL images) by name."""
    return {
        "text": text.images(),
        "diagram": diagrams.images(),
        "screenshot": screens.images(),
        "face": faces.images(),
        "texture": textures.images(),
        "noise_flat": noise.images(size),
        "science": science.images(),
        **photos.images(size),
    }


@lru_cache(maxsize=4)
def ood_images(size: int = 96) -> OODSet:
    """The built-in OOD set at ``size`` x ``size`` (cached: the same read-only arrays on each call)."""
    names, categories, images = [], [], []
    for category, raw in sources(size).items():
        for name, image in raw.items():
            names.append(f"{category}__{name}")
            categories.append(category)
            images.append(fit_rgb(np.asarray(open_rgb(image)), size, "resize"))
    stacked = np.stack(images)
    stacked.flags.writeable = False
    return OODSet(names, categories, stacked)
