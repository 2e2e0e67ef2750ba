"""Model inputs for the analysis CLIs: a folder or an STL-10 ``.bin`` as 96x96 images, run in batches.

Folder images are decoded one by one and fit to the model's square with the same
preprocessing as inference (``qkvae.image.fit``, mode "resize"), so a large folder never
holds its full-size images in memory. Bad inputs raise ``InputError`` with a one-line message.
"""

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qkvae.data import image_source
from qkvae.image import ImageError, fit, open_rgb, to_tensor, to_uint8
from qkvae.weights import WeightsError

PROGRESS_FROM = 200  # show a progress bar for sets of at least this many images
BATCH_SIZE = 32


class InputError(ValueError):
    """A data path that cannot be read as a set of images."""


CLI_ERRORS = (InputError, ImageError, WeightsError, OSError)  # what a CLI reports in one line


def load_fitted(source, size: int = 96, mode: str = "resize", limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """Names and uint8 (N, size, size, 3) images from an image folder or an STL-10 ``.bin`` file
    (its first ``limit`` images if given)."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"no such file or folder: {source}")
    if source.is_file() and source.suffix != ".bin":
        raise InputError(f"{source} is neither an image folder nor an STL-10 .bin file")
    try:
        names, images = image_source(source, limit)
    except (ValueError, FileNotFoundError) as e:  # not an STL-10 file; a folder without images
        raise InputError(str(e)) from None
    progress = tqdm(images, total=len(names), desc="loading", unit="img", disable=len(names) < PROGRESS_FROM)
    fitted = [a if a.shape[:2] == (size, size) else np.asarray(fit(open_rgb(a), size, mode)) for a in progress]
    return names, np.stack(fitted)


def batches(n: int, batch_size: int = BATCH_SIZE, desc: str | None = None):
    """Slices covering ``range(n)`` in chunks, with a progress bar for large ``n``."""
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=n < PROGRESS_FROM):
        yield slice(start, min(start + batch_size, n))


def encode_images(model, rgb: np.ndarray, batch_size: int = BATCH_SIZE, desc="encoding") -> np.ndarray:
    """uint8 (N, H, W, 3) -> ids int64 (N, num_tokens); N may be 0."""
    if not len(rgb):
        return np.zeros((0, model.config.num_tokens), dtype=np.int64)
    out = [model.encode(to_tensor(rgb[s]).to(model.device)).cpu() for s in batches(len(rgb), batch_size, desc)]
    return torch.cat(out).numpy()


def reconstruct_images(model, rgb: np.ndarray, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) -> (ids int64 (N, num_tokens), reconstructions uint8 (N, H, W, 3))."""
    indices, recons = [], []
    for s in batches(len(rgb), batch_size, "reconstructing"):
        ids = model.encode(to_tensor(rgb[s]).to(model.device))
        indices.append(ids.cpu())
        recons.append(to_uint8(model.decode(ids)))
    return torch.cat(indices).numpy(), np.concatenate(recons)
