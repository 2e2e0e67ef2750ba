"""Images through the tokenizer and back: one image, or a whole image source in batches.

``reconstruct`` runs one (3, 96, 96) tensor. For sets, ``load_fitted`` decodes a source (see
``qkvae.sources``) and fits each image to the model's square, skipping and recording entries
that cannot be decoded; ``encode_images`` and ``reconstruct_set`` then run the model in batches.
Metrics follow ``qkvae.metrics`` (8-bit images).
"""

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from qkvae.image import fit, open_rgb, to_tensor, to_uint8
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAE
from qkvae.sources import ImageSource, Skipped, SourceError, open_source, read_all

BATCH_SIZE = 32
PROGRESS_FROM = 200  # show a progress bar for sets of at least this many images


@dataclass(frozen=True)
class FittedImages:
    names: list[str]
    images: np.ndarray  # uint8 (N, size, size, 3)
    labels: list[int] | None  # None when the source has none
    skipped: list[Skipped]


@dataclass(frozen=True)
class SetReconstruction:
    names: list[str]
    originals: np.ndarray  # uint8 (N, 96, 96, 3), the model inputs
    indices: np.ndarray  # int64 (N, 2304)
    reconstructions: np.ndarray  # uint8 (N, 96, 96, 3)
    psnr: np.ndarray  # (N,) dB
    ssim: np.ndarray  # (N,)
    skipped: list[Skipped]


def reconstruction_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1], (3, H, W) or (B, 3, H, W) (then the mean over images),
    rounded to 8 bits first (``qkvae.metrics``); identical images give 100 dB."""
    a8, b8 = to_uint8(a).reshape(-1, *a.shape[-2:], 3), to_uint8(b).reshape(-1, *b.shape[-2:], 3)
    return float(np.mean([psnr(p, q) for p, q in zip(a8, b8, strict=True)]))


def reconstruct(model: QKVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One image (3, 96, 96) in [-1, 1] -> (indices (2304,) int64, x_hat (3, 96, 96) on the CPU)."""
    indices = model.encode(x.unsqueeze(0).to(model.device))
    return indices[0].cpu(), model.decode(indices)[0].cpu()


def load_fitted(source, size: int = 96, mode: str = "resize", limit: int | None = None) -> FittedImages:
    """The images of ``source`` (an ``ImageSource``, or anything ``open_source`` opens) fit to
    ``size`` x ``size`` with ``mode``; the first ``limit`` entries if given. Entries that cannot
    be decoded are skipped and listed in ``skipped``; raises ``SourceError`` if none is left."""
    source = source if isinstance(source, ImageSource) else open_source(source)
    names, images, labels, skipped = [], [], [], []
    for item in read_all(source, skipped, limit, progress_from=PROGRESS_FROM):
        names.append(item.name)
        images.append(item.rgb if item.rgb.shape[:2] == (size, size) else np.asarray(fit(open_rgb(item.rgb), size, mode)))
        labels.append(item.label)
    if not images:
        raise SourceError(f"none of the entries of {source.description} could be decoded"
                          + (f" (first: {skipped[0].reason})" if skipped else ""))
    return FittedImages(names, np.stack(images), labels if source.labels is not None else None, skipped)


def _batches(n: int, batch_size: int, desc: str):
    for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch", disable=n < PROGRESS_FROM):
        yield slice(start, min(start + batch_size, n))


def encode_images(model: QKVAE, rgb: np.ndarray, batch_size: int = BATCH_SIZE, desc: str = "encoding") -> np.ndarray:
    """uint8 (N, H, W, 3) -> ids int64 (N, num_tokens); N may be 0."""
    out = [model.encode(to_tensor(rgb[s]).to(model.device)).cpu().numpy() for s in _batches(len(rgb), batch_size, desc)]
    return np.concatenate(out) if out else np.zeros((0, model.config.num_tokens), dtype=np.int64)


def reconstruct_set(model: QKVAE, images, batch_size: int = BATCH_SIZE, mode: str = "resize",
                    limit: int | None = None) -> SetReconstruction:
    """Encode and decode every image of ``images`` (``FittedImages``, or a source for
    ``load_fitted``) in batches, with each image's PSNR and SSIM."""
    fitted = images if isinstance(images, FittedImages) else load_fitted(images, model.config.image_size, mode, limit)
    rgb = fitted.images
    indices, recons = [], []
    for s in _batches(len(rgb), batch_size, "reconstructing"):
        ids = model.encode(to_tensor(rgb[s]).to(model.device))
        indices.append(ids.cpu().numpy())
        recons.append(to_uint8(model.decode(ids)))
    recons = np.concatenate(recons)
    pairs = list(zip(rgb, recons, strict=True))
    return SetReconstruction(
        names=fitted.names, originals=rgb, indices=np.concatenate(indices), reconstructions=recons,
        psnr=np.array([psnr(a, b) for a, b in pairs]), ssim=np.array([ssim(a, b) for a, b in pairs]),
        skipped=fitted.skipped,
    )
