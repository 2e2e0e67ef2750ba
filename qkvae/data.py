"""Training images: a whole source decoded into memory, and the random-crop sampler.

Images are decoded into memory once, as uint8 HxWx3 arrays. The sampler draws square crops
covering most of the short side and resizes them to 96x96 with an antialiasing filter, which
makes larger photos look like STL-10 (itself 96x96 downsamples of ImageNet photos).
"""

import math
import sys

import numpy as np
from PIL import Image

from qkvae.sources import open_source, read_all


def load_images(source) -> tuple[list[str], list[np.ndarray]]:
    """Names and full-size uint8 RGB arrays of every decodable image of ``source`` (any spec
    ``qkvae.sources.open_source`` takes), all in memory; each undecodable entry is reported on
    stderr and skipped."""
    skipped = []
    items = list(read_all(open_source(source), skipped))
    for entry in skipped:
        print(f"warning: skipped {entry.name}: {entry.reason}", file=sys.stderr)
    return [item.name for item in items], [item.rgb for item in items]


def source_weights(names: list[str]) -> np.ndarray:
    """Sampling probabilities giving each source (the file-name prefix before '_') an equal share."""
    sources = [n.rsplit("/", 1)[-1].split("_", 1)[0] for n in names]
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
