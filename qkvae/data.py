"""Training and evaluation images: image folders, STL-10 binaries, and the random-crop sampler.

Images are decoded into memory once, as uint8 HxWx3 arrays. The sampler draws square crops
covering most of the short side and resizes them to 96x96 with an antialiasing filter, which
makes larger photos look like STL-10 (itself 96x96 downsamples of ImageNet photos).
"""

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from qkvae.image import open_rgb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
STL10_SIDE = 96


def list_images(folder) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images found in {folder}")
    return paths


def read_stl10_bin(path, limit: int | None = None) -> np.ndarray:
    """An STL-10 ``*_X.bin`` file -> uint8 (N, 96, 96, 3), its first ``limit`` images if given.

    The file stores each image column-major. Only the images asked for are read.
    """
    per_image = 3 * STL10_SIDE * STL10_SIDE
    size = Path(path).stat().st_size
    if size == 0 or size % per_image:
        raise ValueError(f"{path} is not an STL-10 image file ({size} bytes)")
    count = size // per_image if limit is None else min(limit, size // per_image)
    raw = np.fromfile(path, dtype=np.uint8, count=count * per_image)
    return raw.reshape(-1, 3, STL10_SIDE, STL10_SIDE).transpose(0, 3, 2, 1).copy()


def image_source(source, limit: int | None = None) -> tuple[list[str], Iterable[np.ndarray]]:
    """Names and uint8 RGB arrays (decoded lazily, one at a time, for a folder) from an image
    folder or an STL-10 ``.bin`` file; its first ``limit`` images if given."""
    source = Path(source)
    if source.suffix == ".bin":
        images = read_stl10_bin(source, limit)
        return [f"{source.stem}_{i:05d}" for i in range(len(images))], images
    paths = list_images(source)[:limit]
    return [p.name for p in paths], (np.asarray(open_rgb(p)) for p in paths)


def load_images(source, limit: int | None = None) -> tuple[list[str], list[np.ndarray]]:
    """Names and uint8 RGB arrays from an image folder or an STL-10 ``.bin`` file, all in memory."""
    names, images = image_source(source, limit)
    return names, list(images)


def source_weights(names: list[str]) -> np.ndarray:
    """Sampling probabilities giving each source (the file-name prefix before '_') an equal share."""
    sources = [n.split("_", 1)[0] for n in names]
    counts = {s: sources.count(s) for s in set(sources)}
    w = np.array([1.0 / (counts[s] * len(counts)) for s in sources])
    return w / w.sum()


class RandomCropSampler:
    """Draws batches of random square crops resized to ``size``; its RNG state can be saved."""

    def __init__(self, images, size=96, min_scale=0.8, weights=None, seed=0):
        self.images = images
        self.size = size
        self.min_scale = min_scale
        self.weights = weights
        self.rng = np.random.default_rng(seed)

    def crop(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        short = min(h, w)
        lo = min(short, max(self.size, math.ceil(self.min_scale * short)))
        side = int(self.rng.integers(lo, short + 1))
        top = int(self.rng.integers(0, h - side + 1))
        left = int(self.rng.integers(0, w - side + 1))
        box = (left, top, left + side, top + side)
        out = Image.fromarray(img).resize((self.size, self.size), Image.Resampling.BICUBIC, box=box)
        return np.asarray(out)

    def sample(self, batch: int) -> np.ndarray:
        """uint8 (batch, size, size, 3)."""
        picks = self.rng.choice(len(self.images), size=batch, p=self.weights)
        return np.stack([self.crop(self.images[i]) for i in picks])

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
