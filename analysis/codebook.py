"""Codebook statistics over FSQ token ids: counts, usage, entropy, level histograms.

An accumulator in the style of TiTok's evaluator (``reset()``, ``update(indices)``,
``result()``). It keeps a float64 histogram of the ``prod(levels)`` ids (15,360 for QKVAE-1m)
and the usage curve (codes seen against images seen); everything else is derived from the histogram in ``result()``.
Ids decompose into one integer level per FSQ dimension with ``qkvae.fsq.indices_to_digits``.
"""

import math
from dataclasses import dataclass

import numpy as np

from qkvae import fsq
from qkvae.fsq import as_indices

TOP_K = 10


def code_counts(indices, codebook_size: int) -> np.ndarray:
    """How often each id occurs in ``indices`` (any shape): int64 (codebook_size,)."""
    ids = as_indices(indices).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= codebook_size):
        raise ValueError(f"token ids must lie in 0..{codebook_size - 1}, got {ids.min()}..{ids.max()}")
    return np.bincount(ids, minlength=codebook_size)


def level_histograms(indices, levels, weights=None) -> list[np.ndarray]:
    """Per FSQ dimension, how many tokens sit at each level: a list of D arrays of length levels[d].

    With ``weights`` (one per id in ``indices``), each id counts ``weights`` times, which turns a
    histogram over ids (``indices = arange(codebook_size)``) into level histograms.
    """
    d = fsq.indices_to_digits(as_indices(indices), levels).reshape(-1, len(levels))
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    return [np.bincount(d[:, k], weights=w, minlength=n) for k, n in enumerate(levels)]


def entropy_bits(counts) -> float:
    """Shannon entropy in bits of a histogram (0 for an empty one)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def extreme_share(level_hists) -> list[float]:
    """Per dimension, the share of tokens at the lowest or the highest level."""
    return [float((h[0] + h[-1]) / h.sum()) if h.sum() else 0.0 for h in level_hists]


@dataclass(frozen=True)
class CodebookSummary:
    """What ``CodebookStats.result()`` reports."""

    counts: np.ndarray  # float64 (codebook_size,), tokens per id
    num_images: int
    num_tokens: int
    codes_seen: int
    usage: float  # codes_seen / codebook_size
    entropy_bits: float
    max_entropy_bits: float
    perplexity: float
    level_histograms: list[np.ndarray]  # per FSQ dimension, tokens per level
    extreme_share: list[float]  # per dimension, share of tokens at the lowest or highest level
    top_codes: list[tuple[int, int]]  # (id, count), most used first
    dead_codes: int
    dead_code_ids: np.ndarray
    usage_curve: list[tuple[int, int]]  # (images seen, codes seen) after each image


class CodebookStats:
    """Accumulates id counts over images and reports codebook usage.

    ``update`` takes the ids of one image or of a batch, in any shape; every
    ``tokens_per_image`` ids count as one image for the usage curve.
    """

    def __init__(self, levels, tokens_per_image: int):
        self.levels = tuple(levels)
        self.codebook_size = math.prod(self.levels)
        self.tokens_per_image = tokens_per_image
        self.reset()

    @classmethod
    def from_state(cls, counts, usage_curve, levels, tokens_per_image: int) -> "CodebookStats":
        """Stats restored from a saved ``counts`` and ``usage_curve`` (a cached pass over a set),
        ready for ``result`` or more ``update``s."""
        stats = cls(levels, tokens_per_image)
        stats.counts = np.array(counts, dtype=np.float64)
        stats.usage_curve = [(int(images), int(codes)) for images, codes in usage_curve]
        stats._seen = stats.counts > 0
        return stats

    def reset(self) -> None:
        self.counts = np.zeros(self.codebook_size, dtype=np.float64)
        self.usage_curve = []  # (images_seen, codes_seen) after each image
        self._seen = np.zeros(self.codebook_size, dtype=bool)

    def update(self, indices) -> None:
        ids = as_indices(indices).ravel()
        if ids.size % self.tokens_per_image:
            raise ValueError(f"{ids.size} ids are not a whole number of {self.tokens_per_image}-token images")
        self.counts += code_counts(ids, self.codebook_size)
        images_seen, codes_seen = self.usage_curve[-1] if self.usage_curve else (0, 0)
        for image in ids.reshape(-1, self.tokens_per_image):
            new = np.unique(image)
            new = new[~self._seen[new]]
            self._seen[new] = True
            images_seen, codes_seen = images_seen + 1, codes_seen + len(new)
            self.usage_curve.append((images_seen, codes_seen))

    def result(self, top_k: int = TOP_K) -> "CodebookSummary":
        counts = self.counts.copy()
        entropy = entropy_bits(counts)
        hists = level_histograms(np.arange(self.codebook_size), self.levels, weights=counts)
        top = np.argsort(-counts, kind="stable")[:top_k]
        dead = np.flatnonzero(counts == 0)
        return CodebookSummary(
            counts=counts,
            num_images=self.usage_curve[-1][0] if self.usage_curve else 0,
            num_tokens=int(counts.sum()),
            codes_seen=self.codebook_size - len(dead),
            usage=(self.codebook_size - len(dead)) / self.codebook_size,
            entropy_bits=entropy,
            max_entropy_bits=math.log2(self.codebook_size),
            perplexity=2.0**entropy,
            level_histograms=hists,
            extreme_share=extreme_share(hists),
            top_codes=[(int(i), int(counts[i])) for i in top if counts[i] > 0],
            dead_codes=len(dead),
            dead_code_ids=dead,
            usage_curve=list(self.usage_curve),
        )
