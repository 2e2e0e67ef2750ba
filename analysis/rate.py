"""Rate: what an image's tokens cost in bits, and what JPEG achieves at the same size.

Three rates for QKVAE, in bits per image:
- nominal: every token stored as a fixed-width id, ``num_tokens * log2(codebook_size)``;
- own entropy: an ideal coder using the image's own token histogram (the histogram itself
  not counted), ``num_tokens * H(histogram)``;
- reference: an ideal arithmetic coder using the reference distribution, ``sum -log2 p``.
JPEG is Pillow's baseline encoder with its defaults (4:2:0 chroma subsampling, standard
tables); its size is the whole file, headers included, and its quality is chosen as the
highest whose file fits the byte budget. Metrics follow ``qkvae.metrics``.
"""

import io
import math

import numpy as np
from PIL import Image

from analysis.codebook import code_counts, entropy_bits
from qkvae.fsq import as_indices
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAEConfig

JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)  # the RD curve's points


def nominal_bits(config: QKVAEConfig = QKVAEConfig()) -> float:
    """Bits per image with fixed-width ids: 2,304 * log2(15,360) = 32,042 for QKVAE-1m."""
    return config.num_tokens * math.log2(config.codebook_size)


def empirical_entropy_bits(indices, probs=None) -> float:
    """Bits per image for an ideal entropy coder: from the image's own histogram, or from ``probs``."""
    ids = as_indices(indices).ravel()
    if probs is not None:
        return float(-np.log2(np.asarray(probs)[ids]).sum())
    return ids.size * entropy_bits(code_counts(ids, ids.max(initial=0) + 1))


def bits_per_pixel(bits: float, rgb: np.ndarray) -> float:
    return bits / (rgb.shape[0] * rgb.shape[1])


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    """The JPEG file Pillow writes for uint8 (H, W, 3) at ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def jpeg(rgb: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    """Encode uint8 (H, W, 3) with Pillow at ``quality``: (file size in bytes, decoded uint8 image)."""
    data = jpeg_bytes(rgb, quality)
    return len(data), decode_jpeg(data)


def jpeg_at_bytes(rgb: np.ndarray, target_bytes: float) -> dict:
    """JPEG at the highest quality (1..100) whose file fits ``target_bytes``, scored against ``rgb``.

    Binary search on quality (7 encodes, 1 decode; file size grows with quality). Returns
    ``quality``, ``bytes``, ``bits_per_pixel``, ``psnr``, ``ssim``, the decoded ``rgb``, and
    ``fits`` (False when even quality 1 is larger than the budget; then quality 1 is reported).
    """
    lo, hi, best = 1, 100, None
    while lo <= hi:
        q = (lo + hi) // 2
        data = jpeg_bytes(rgb, q)
        if len(data) <= target_bytes:
            best, lo = (q, data), q + 1
        else:
            hi = q - 1
    quality, data = best or (1, jpeg_bytes(rgb, 1))
    decoded = decode_jpeg(data)
    return {
        "quality": quality,
        "bytes": len(data),
        "bits_per_pixel": bits_per_pixel(8 * len(data), rgb),
        "psnr": psnr(rgb, decoded),
        "ssim": ssim(rgb, decoded),
        "fits": best is not None,
        "rgb": decoded,
    }


def jpeg_curve(rgb: np.ndarray, qualities=JPEG_QUALITIES) -> list[tuple[float, float, float]]:
    """The JPEG rate-distortion curve of one image: (bits_per_pixel, psnr, ssim) per quality."""
    points = []
    for q in qualities:
        size, decoded = jpeg(rgb, q)
        points.append((bits_per_pixel(8 * size, rgb), psnr(rgb, decoded), ssim(rgb, decoded)))
    return points
