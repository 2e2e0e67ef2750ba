"""The Dataset tab's computation: find the STL-10 images, reconstruct them all, rank them by error.

The source is an image folder (``../shared/data/stl10-samples`` by default), an STL-10
``*_X.bin`` file, or the ``stl10_binary/`` folder holding such files (``test_X.bin`` is used
when present). At most ``MAX_IMAGES`` images are evaluated.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from analysis.metrics import psnr
from qkvae import QKVAE
from qkvae.data import load_images
from qkvae.image import fit, to_tensor, to_uint8

MAX_IMAGES = 512
BATCH = 32
ORDERS = ("file order", "worst first", "best first")


@dataclass(frozen=True)
class DatasetEval:
    source: Path
    names: list[str]
    originals: np.ndarray  # (N, 96, 96, 3) uint8
    reconstructions: np.ndarray  # (N, 96, 96, 3) uint8
    indices: np.ndarray  # (N, 48, 48) int64
    psnrs: np.ndarray  # (N,) dB


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


def _load(source: Path, size: int) -> tuple[list[str], np.ndarray]:
    names, images = load_images(source)
    names, images = names[:MAX_IMAGES], images[:MAX_IMAGES]
    fitted = [a if a.shape[:2] == (size, size) else np.asarray(fit(Image.fromarray(a), size, "center_crop"))
              for a in images]
    return names, np.stack(fitted)


def evaluate(model: QKVAE, path: Path) -> DatasetEval:
    """Reconstruct every image of the dataset at ``path``; raises ``FileNotFoundError`` or ``ValueError``."""
    source = find_source(path)
    if not source.exists():
        raise FileNotFoundError(missing_message(path))
    names, originals = _load(source, model.config.image_size)
    indices, recons = [], []
    with torch.inference_mode():
        for start in range(0, len(originals), BATCH):
            ids = model.encode(to_tensor(originals[start:start + BATCH]).to(model.device))  # (B, 2304)
            recons.append(to_uint8(model.decode(ids)))
            indices.append(ids.cpu().numpy())
    g = model.config.grid_size
    recons = np.concatenate(recons)
    return DatasetEval(
        source=source, names=names, originals=originals, reconstructions=recons,
        indices=np.concatenate(indices).reshape(-1, g, g),
        psnrs=np.array([psnr(a, b) for a, b in zip(originals, recons)]),
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
