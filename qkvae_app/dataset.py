"""The Dataset tab's computation: find the STL-10 images, reconstruct them, rank them by error.

The source is an image folder (``../shared/data/stl10-samples`` by default), an STL-10
``*_X.bin`` file, or the ``stl10_binary/`` folder holding such files (``test_X.bin`` is used
when present). The first ``MAX_IMAGES`` images are evaluated.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.codebook import CodebookStats
from analysis.inputs import InputError, load_fitted, reconstruct_images
from analysis.metrics import psnr
from qkvae import QKVAE

MAX_IMAGES = 512
ORDERS = ("file order", "worst first", "best first")


@dataclass(frozen=True)
class DatasetEval:
    source: Path
    names: list[str]
    originals: np.ndarray  # (N, 96, 96, 3) uint8
    reconstructions: np.ndarray  # (N, 96, 96, 3) uint8
    psnrs: np.ndarray  # (N,) dB
    codebook: dict  # analysis.codebook.CodebookStats.result() over all N images


def find_source(path: Path) -> Path:
    """The file or folder to read: ``path`` itself, or the ``*_X.bin`` inside an ``stl10_binary/`` folder."""
    bins = sorted(path.glob("*_X.bin")) if path.is_dir() else []
    if not bins:
        return path
    return next((b for b in bins if b.name == "test_X.bin"), bins[0])


def missing_message(path: Path) -> str:
    """What to do when there are no images at ``path``."""
    return (
        f"No STL-10 images found at `{path}`. Put 96x96 STL-10 images (PNG or JPEG) in that folder, "
        "or set the environment variable `QKVAE_DATA` to an image folder, an STL-10 `*_X.bin` file, "
        "or the `stl10_binary/` folder, then restart the app."
    )


def evaluate(model: QKVAE, path: Path) -> DatasetEval:
    """Reconstruct the dataset at ``path``; raises ``InputError`` (saying where to put the data) or ``ImageError``."""
    source = find_source(path)
    try:
        names, originals = load_fitted(source, model.config.image_size, limit=MAX_IMAGES)
    except InputError:
        raise InputError(missing_message(path)) from None
    indices, recons = reconstruct_images(model, originals)
    stats = CodebookStats(model.config.levels, model.config.num_tokens)
    stats.update(indices)
    return DatasetEval(
        source=source, names=names, originals=originals, reconstructions=recons,
        psnrs=np.array([psnr(a, b) for a, b in zip(originals, recons, strict=True)]), codebook=stats.result(),
    )


def ranked(result: DatasetEval, order: str, count: int = 16) -> np.ndarray:
    """Positions of ``count`` images in the chosen order: file order, lowest PSNR first, or highest first."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    if order == "file order":
        positions = np.arange(len(result.names))
    else:
        positions = np.argsort(result.psnrs, kind="stable")
        positions = positions if order == "worst first" else positions[::-1]
    return positions[:count]
