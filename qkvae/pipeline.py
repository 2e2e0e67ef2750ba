"""Images through the tokenizer and back: one image, or a whole image source gathered in memory.

``reconstruct`` runs one (3, 96, 96) tensor. For sets, ``load_fitted`` decodes a source (see
``qkvae.sources``) and fits each image to the model's square, skipping and recording entries
that cannot be decoded; ``encode_images`` and ``reconstruct_set`` then run the model in batches.
All three are the pass of ``qkvae.stream`` gathered into one result; a feature that can work a
chunk at a time uses the pass itself. Metrics follow ``qkvae.metrics`` (8-bit images).
"""

import numpy as np
import torch

from qkvae.image import to_uint8
from qkvae.metrics import psnr
from qkvae.model import QKVAE
from qkvae.sources import ImageSource, SourceError, open_source
from qkvae.stream import ChunkRunner, FittedImages, SetReconstruction, read_chunks, split, stream, with_progress

BATCH_SIZE = 32
LOAD_CHUNK = 256  # entries decoded per step of load_fitted's progress


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
    count = len(source) if limit is None else min(limit, len(source))
    parts = list(with_progress(read_chunks(source, LOAD_CHUNK, size, mode, limit), count, "loading"))
    skipped = [s for p in parts for s in p.skipped]
    if not any(p.names for p in parts):
        raise SourceError(f"none of the entries of {source.description} could be decoded"
                          + (f" (first: {skipped[0].reason})" if skipped else ""))
    return FittedImages([n for p in parts for n in p.names], np.concatenate([p.images for p in parts]),
                        [x for p in parts for x in p.labels], skipped)


def encode_images(model: QKVAE, rgb: np.ndarray, batch_size: int = BATCH_SIZE, desc: str = "encoding") -> np.ndarray:
    """uint8 (N, H, W, 3) -> ids int64 (N, num_tokens); N may be 0."""
    images = FittedImages([""] * len(rgb), rgb, [None] * len(rgb), [])
    parts = stream(ChunkRunner(model, decode=False, metrics=False), with_progress(split(images, batch_size), len(rgb), desc))
    return SetReconstruction.concat(list(parts)).indices


def reconstruct_set(model: QKVAE, images, batch_size: int = BATCH_SIZE, mode: str = "resize",
                    limit: int | None = None) -> SetReconstruction:
    """Encode and decode every image of ``images`` (``FittedImages``, or a source for
    ``load_fitted``) in batches, with each image's PSNR and SSIM."""
    fitted = images if isinstance(images, FittedImages) else load_fitted(images, model.config.image_size, mode, limit)
    chunks = with_progress(split(fitted, batch_size), len(fitted.names), "reconstructing")
    return SetReconstruction.concat(list(stream(ChunkRunner(model), chunks)))
