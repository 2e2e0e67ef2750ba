"""The Dataset tab's computation: open the STL-10 images, reconstruct them, rank them by error.

The source is anything ``qkvae.open_source`` opens (``../shared/data/stl10-samples`` by default,
an STL-10 ``*_X.bin``, the ``stl10_binary/`` folder, Parquet files). The first ``MAX_IMAGES``
images are evaluated.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.codebook import CodebookStats, CodebookSummary
from qkvae import QKVAE, SourceError, open_source
from qkvae.pipeline import SetReconstruction, reconstruct_set

MAX_IMAGES = 512
ORDERS = ("file order", "worst first", "best first")


@dataclass(frozen=True)
class DatasetEval:
    source: str  # where the images came from
    images: SetReconstruction
    codebook: CodebookSummary  # over all images


def missing_message(path: Path) -> str:
    """What to do when there are no images at ``path``."""
    return (
        f"No STL-10 images found at `{path}`. Put 96x96 STL-10 images (PNG or JPEG) in that folder, "
        "or set the environment variable `QKVAE_DATA` to an image folder, an STL-10 `*_X.bin` file, "
        "the `stl10_binary/` folder or Parquet files, then restart the app."
    )


def reconstruct_dataset(model: QKVAE, path: Path) -> DatasetEval:
    """Reconstruct the dataset at ``path``; raises ``SourceError`` saying where to put the data."""
    try:
        source = open_source(path)
    except SourceError:
        raise SourceError(missing_message(path)) from None
    images = reconstruct_set(model, source, limit=MAX_IMAGES)
    stats = CodebookStats(model.config.levels, model.config.num_tokens)
    stats.update(images.indices)
    return DatasetEval(source=source.description, images=images, codebook=stats.result())


def ranked(result: DatasetEval, order: str, count: int = 16) -> np.ndarray:
    """Positions of ``count`` images in the chosen order: file order, lowest PSNR first, or highest first."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    if order == "file order":
        positions = np.arange(len(result.images.names))
    else:
        positions = np.argsort(result.images.psnr, kind="stable")
        positions = positions if order == "worst first" else positions[::-1]
    return positions[:count]
