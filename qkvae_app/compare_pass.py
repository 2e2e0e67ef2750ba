"""The Compare tab's computation: checkpoints A and B run on the same fitted images, then
``analysis.compare``'s pure functions (``compare_images`` for one image, ``compare_sets`` for a set).

A set is read a chunk of ``CHUNK`` images at a time (``qkvae.stream.read_chunks``), each chunk
run through A and through B; ``run_a`` and ``run_b`` are ``qkvae_app.gpu``'s
``reconstruct_images`` and ``reconstruct_with`` (one GPU call each on ZeroGPU) or, in tests,
``reconstruct_set`` with a model. The result keeps the images and both reconstructions (what the
worst-regressions gallery shows and a click opens), not the models: those stay in the bounded
``qkvae_app.checkpoints.CheckpointCache``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.compare import (
    Comparison,
    ImageComparison,
    Side,
    compare_images,
    compare_sets,
    worst_regressions,
)
from qkvae.model import QKVAE
from qkvae.sources import ImageSource, Skipped, SourceError
from qkvae.stream import FittedImages, SetReconstruction, read_chunks

CHUNK = 64  # images per call of each model, and per progress step
WORST = 12  # worst regressions shown

Run = Callable[[FittedImages], SetReconstruction]
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Named:
    """A checkpoint as the comparison names it: its model, its name and its weights' SHA-256."""

    model: QKVAE
    name: str
    sha256: str
    run: Run  # the model's reconstruct function


@dataclass(frozen=True)
class ComparedSet:
    """A set compared: the statistics and what the gallery and the single-image view need."""

    comparison: Comparison
    originals: np.ndarray  # uint8 (N, 96, 96, 3), the model inputs
    reconstructions_a: np.ndarray
    reconstructions_b: np.ndarray

    def worst(self, count: int = WORST) -> list[int]:
        """Positions of the ``count`` images B loses most PSNR on, worst first."""
        return worst_regressions(self.comparison, count).tolist()

    def position(self, name: str) -> int:
        return [p.name for p in self.comparison.images].index(name)


def compare_image(name: str, image: np.ndarray, a: Named, b: Named) -> tuple[ImageComparison, SetReconstruction,
                                                                             SetReconstruction]:
    """One fitted uint8 (H, W, 3) image through A and B: the comparison and both reconstructions."""
    fitted = FittedImages([name], image[None], [None], [])
    ra, rb = a.run(fitted), b.run(fitted)
    return (compare_images(name, image, ra.reconstructions[0], rb.reconstructions[0], ra.indices[0], rb.indices[0],
                           a.model.config, b.model.config), ra, rb)


def compare_source(source: ImageSource, a: Named, b: Named, mode: str = "resize", limit: int | None = None,
                   progress: Progress | None = None, unlisted: list[Skipped] = ()) -> ComparedSet:
    """The first ``limit`` images of ``source`` (all by default), fit with ``mode``, through A and B;
    ``unlisted`` are entries skipped before reading (``qkvae_app.explore.open_uploads``'s). Raises ``SourceError`` when none could be decoded."""
    report = progress if progress is not None else (lambda fraction, desc: None)  # a gr.Progress is falsy
    n = len(source) if limit is None else min(limit, len(source))
    parts_a, parts_b, fitted = [], [], []
    for chunk in read_chunks(source, CHUNK, a.model.config.image_size, mode, n):
        report(chunk.chunk.start / max(n, 1), f"comparing: {chunk.chunk.start} of {n} images read")
        fitted.append(chunk)
        parts_a.append(a.run(chunk))
        parts_b.append(b.run(chunk))
    skipped = [s for f in fitted for s in f.skipped]
    names = [name for f in fitted for name in f.names]
    if not names:
        raise SourceError(f"none of the {n} entries of {source.description} could be decoded"
                          + (f" (first: {skipped[0].reason})" if skipped else ""))
    ra, rb = SetReconstruction.concat(parts_a), SetReconstruction.concat(parts_b)
    images = FittedImages(names, ra.originals, [None] * len(names), skipped + list(unlisted))
    comparison = compare_sets(images, Side(a.name, a.sha256, a.model, ra), Side(b.name, b.sha256, b.model, rb))
    return ComparedSet(comparison, ra.originals, ra.reconstructions, rb.reconstructions)
